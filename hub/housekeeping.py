"""Rows that have served their purpose, deleted by each process's background loop once an hour.

- OAuth states: single-use and valid for minutes; kept a day after they expire (the callback of a late
  user still reads "expired", not "unknown").
- Hosted-connect links: kept a week after they expired or were revoked (their page says "expired" and
  ``GET /v1/connect-sessions/{id}`` still shows them), then deleted with their token hash.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_

from hub.db.models import ConnectSession, OAuthState

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.housekeeping")

EVERY_SECONDS = 3600.0
OAUTH_STATES_KEPT = timedelta(days=1)
CONNECT_SESSIONS_KEPT = timedelta(days=7)


async def purge_expired(hub: Hub) -> dict[str, int]:
    """Delete what has outlived its keeping; returns how many rows of each kind."""
    now = hub.clock()
    async with hub.session() as session:
        states = await session.execute(delete(OAuthState).where(OAuthState.expires_at < now - OAUTH_STATES_KEPT))
        cutoff = now - CONNECT_SESSIONS_KEPT
        links = await session.execute(delete(ConnectSession).where(
            or_(ConnectSession.expires_at < cutoff, ConnectSession.revoked_at < cutoff)))
    purged = {"oauth_states": states.rowcount, "connect_sessions": links.rowcount}
    if any(purged.values()):
        log.info("purged %d expired OAuth states and %d expired connect links", *purged.values())
    return purged
