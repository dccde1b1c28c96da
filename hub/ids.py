"""New row ids: time-ordered (version 7) UUIDs, RFC 9562.

The first 48 bits are the Unix time in milliseconds and the next 12 the fraction of that millisecond
(the RFC's "increased clock precision" method), so ids made one after another sort one after another and
land beside each other in every index on an id: a batch of inserts touches the rightmost page of each
such B-tree instead of one random page per row (less to write to SQLite's WAL or PostgreSQL's, and a
smaller working set of index pages). The other 62 bits are random: an id is never guessable, though it
tells when its row was made (no id here is a secret; tokens and OAuth states are hashed secrets of their
own).

The random bits come from the kernel 4 KiB at a time: ``os.urandom`` per id is a system call that
releases the GIL, and on a busy event loop each one handed the interpreter to another thread (the
webhook intake's writer, a sync's database thread) while the loop waited to get it back. The pool is a
list, whose ``pop`` is atomic, so threads share it without a lock.
"""

from __future__ import annotations

import os
import struct
import time
import uuid

_BLOCK = struct.Struct(">512Q")  # 4 KiB of randomness, 512 draws
_pool: list[int] = []
_RANDOM_BITS = (1 << 62) - 1
_VERSION_AND_VARIANT = (0x7 << 76) | (0b10 << 62)


def new_id() -> uuid.UUID:
    try:
        random_bits = _pool.pop()
    except IndexError:
        _pool.extend(_BLOCK.unpack(os.urandom(_BLOCK.size)))
        random_bits = _pool.pop()
    milliseconds, nanoseconds = divmod(time.time_ns(), 1_000_000)
    fraction = nanoseconds * 4096 // 1_000_000  # 12 bits: about a quarter of a microsecond
    # Built as Python 3.14's uuid.uuid7 builds its UUIDs: the value is valid by construction, and
    # UUID(int=...)'s checks cost more than the rest of this function.
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", (milliseconds << 80) | (fraction << 64) | _VERSION_AND_VARIANT
                       | (random_bits & _RANDOM_BITS))
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made


def _forget_pool() -> None:
    """A forked child must not hand out the random bits its parent will."""
    _pool.clear()


os.register_at_fork(after_in_child=_forget_pool)
