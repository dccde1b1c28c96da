"""Row ids: version 7 UUIDs, in the order they were made, never the same twice (nor in a forked child)."""

from __future__ import annotations

import multiprocessing
import time

from hub.ids import new_id


def test_ids_are_version_7_with_the_time_they_were_made():
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000
    assert (made.version, made.variant) == (7, "specified in RFC 4122")
    assert before <= made.int >> 80 <= after


def test_ids_made_later_sort_later_and_none_repeats():
    first = [new_id() for _ in range(20_000)]
    time.sleep(0.002)
    second = [new_id() for _ in range(20_000)]
    assert max(first) < min(second)
    assert len(set(first + second)) == 40_000


def _random_bits(queue) -> None:
    queue.put([new_id().int & ((1 << 62) - 1) for _ in range(100)])


def test_a_forked_child_draws_other_random_bits_than_its_parent():
    new_id()  # the parent's pool is filled: a child that kept it would hand out the same bits
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_random_bits, args=(queue,))
    child.start()
    theirs = queue.get(timeout=30)
    child.join(timeout=30)
    ours = [new_id().int & ((1 << 62) - 1) for _ in range(100)]
    assert not set(ours) & set(theirs)
