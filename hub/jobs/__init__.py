"""Jobs: the ``jobs`` table is an outbox of work; Dramatiq carries nudges to workers."""

from hub.jobs.outbox import JOB_KINDS, enqueue

__all__ = ["JOB_KINDS", "enqueue"]
