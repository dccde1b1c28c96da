"""How ``hub serve`` runs the API (uvicorn) and ``hub worker`` its loop, with the interpreter tuned for a
process whose event loop shares the GIL with threads that wait on the database."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

SWITCH_INTERVAL_SECONDS = 0.0005
"""The webhook intake writes each batch in a thread (and embedded jobs block worker threads). A thread
back from a database round trip waits for the GIL while the event loop runs; at Python's default
interval (5 ms) it may wait that long after every statement, which made a batch's transaction last ten
times its database time under load. Half a millisecond keeps the loop's share and cuts that wait."""

GC_THRESHOLDS = (10_000, 10, 10)
"""Python's collector runs a young-generation pass every 700 net allocations of container objects (the
default), about every 15 webhooks here, and a full pass, which walks every object the process holds,
every hundred of those: 40 ms, long enough for a burst of requests to wait behind it. At 10,000 the
passes are rare, and each is no longer than before: the young objects still alive at a pass are the
requests in flight, however many came and went since the last one."""


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a process's main coroutine (``hub worker``'s relay and webhook sender) on uvloop where it is
    installed, as uvicorn runs ``hub serve``; else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def tune_interpreter() -> None:
    """Call once the app (or the worker) is built, before serving: what exists by then (modules, plugins,
    routes, the ORM's metadata) lives as long as the process, so it is moved out of the collector's sight
    (``gc.freeze``) rather than walked again by every full pass."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(app, host: str, port: int) -> None:
    import uvicorn

    tune_interpreter()
    uvicorn.run(app, host=host, port=port, log_config=None)
