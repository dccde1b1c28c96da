"""A clock the test moves by hand. ``hub.clock = Clock()`` (or the ``clock`` fixture) makes the hub read the
time from it wherever time decides what happens next: when jobs and their retries are due
(``run_jobs`` runs what is due by it), when webhook deliveries are retried, when a periodic inbound
sync is due, and whether an access token is close enough to expiry to be refreshed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta | float) -> datetime:
        self.now += by if isinstance(by, timedelta) else timedelta(seconds=by)
        return self.now

    def set(self, when: datetime) -> datetime:
        self.now = when
        return when
