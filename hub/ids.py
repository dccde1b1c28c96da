"""New row ids: random (version 4) UUIDs, drawn from the kernel 4 KiB at a time.

``uuid.uuid4()`` asks the kernel for 16 bytes on every call: a system call that releases the GIL. On a
busy event loop each id is then a chance for another thread (the webhook intake's writer, a sync's
database thread) to take the interpreter, and the loop waits to get it back: in the webhook receiver
that wait cost more than all the hub's own work on a request. The randomness is the same.
"""

from __future__ import annotations

import os
import threading
import uuid

_BLOCK = 4096
_lock = threading.Lock()
_pool = memoryview(b"")


def new_id() -> uuid.UUID:
    global _pool
    with _lock:
        if len(_pool) < 16:
            _pool = memoryview(os.urandom(_BLOCK))
        chunk, _pool = _pool[:16], _pool[16:]
    return uuid.UUID(bytes=chunk.tobytes(), version=4)


def _forget_pool() -> None:
    """A forked child must not hand out the ids its parent will."""
    global _pool, _lock
    _pool, _lock = memoryview(b""), threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)
