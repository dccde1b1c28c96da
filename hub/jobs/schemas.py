from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from hub.db.models import Job


class JobOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    status: str
    attempts: int
    max_attempts: int
    run_at: datetime
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


def job_out(job: Job) -> JobOut:
    return JobOut(id=job.id, kind=job.kind, payload=job.payload, status=job.status, attempts=job.attempts,
                  max_attempts=job.max_attempts, run_at=job.run_at, last_error=job.last_error,
                  created_at=job.created_at, finished_at=job.finished_at)
