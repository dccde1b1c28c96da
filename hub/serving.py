"""How ``hub serve`` runs the API: uvicorn, with the interpreter tuned for a server whose event loop shares
the GIL with threads that wait on the database."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

SWITCH_INTERVAL_SECONDS = 0.0005
"""The webhook intake writes each batch in a thread (and embedded jobs block worker threads). A thread
back from a database round trip waits for the GIL while the event loop runs; at Python's default
interval (5 ms) it may wait that long after every statement, which made a batch's transaction last ten
times its database time under load. Half a millisecond keeps the loop's share and cuts that wait."""


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a process's main coroutine (``hub worker``'s relay and webhook sender) on uvloop where it is
    installed, as uvicorn runs ``hub serve``; else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def tune_interpreter() -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)


def run(app, host: str, port: int) -> None:
    import uvicorn

    tune_interpreter()
    uvicorn.run(app, host=host, port=port, log_config=None)
