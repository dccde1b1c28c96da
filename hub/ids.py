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
webhook intake's writer, a sync's database thread) while the loop waited to get it back.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_BLOCK = 4096
_lock = threading.Lock()
_pool = memoryview(b"")
_RANDOM_BITS = (1 << 62) - 1
_VERSION_AND_VARIANT = (0x7 << 76) | (0b10 << 62)


def new_id() -> uuid.UUID:
    global _pool
    with _lock:
        if len(_pool) < 8:
            _pool = memoryview(os.urandom(_BLOCK))
        chunk, _pool = _pool[:8], _pool[8:]
    milliseconds, nanoseconds = divmod(time.time_ns(), 1_000_000)
    fraction = nanoseconds * 4096 // 1_000_000  # 12 bits: about a quarter of a microsecond
    return uuid.UUID(int=(milliseconds << 80) | (fraction << 64) | _VERSION_AND_VARIANT
                     | (int.from_bytes(chunk, "big") & _RANDOM_BITS))


def _forget_pool() -> None:
    """A forked child must not hand out the random bits its parent will."""
    global _pool, _lock
    _pool, _lock = memoryview(b""), threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)
