"""Where DocuSign lives (the demo or production account server, or one override base URL such as the
simulator's), its limits, and the Connect HMAC keys the hub accepts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hub import RateLimit

SLUG = "docusign"
SCOPES = ("signature", "extended")
"""``signature`` for the eSignature API; ``extended`` keeps the refresh token alive while it is used."""
ACCOUNT_SERVERS = {"demo": "https://account-d.docusign.com", "production": "https://account.docusign.com"}
HOURLY_LIMIT = 3000
BURST_LIMITS = {"demo": 200, "production": 500}
"""Requests per 30 seconds per account: 200 in the developer (demo) environment, 500 in production."""
POLL_INTERVAL_SECONDS = 15 * 60
"""DocuSign allows one status request per envelope per 15 minutes; Connect tells the hub the rest."""


@dataclass(frozen=True, kw_only=True)
class DocuSignConfig:
    environment: str
    account_server: str
    """``/oauth/auth``, ``/oauth/token`` and ``/oauth/userinfo`` live here; the eSignature API lives at the
    ``base_uri`` userinfo names for the account."""
    simulated: bool
    """``DOCUSIGN_BASE_URL`` is set: plain http is acceptable for the API base (the local simulator)."""
    hmac_keys: tuple[str, ...]

    @property
    def authorize_url(self) -> str:
        return f"{self.account_server}/oauth/auth"

    @property
    def token_url(self) -> str:
        return f"{self.account_server}/oauth/token"

    @property
    def userinfo_url(self) -> str:
        return f"{self.account_server}/oauth/userinfo"

    @property
    def rate_limits(self) -> tuple[RateLimit, ...]:
        """Per account (connection): 3,000 requests an hour and the 30-second burst limit."""
        return (RateLimit(requests=HOURLY_LIMIT, per_seconds=3600),
                RateLimit(requests=BURST_LIMITS[self.environment], per_seconds=30))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> DocuSignConfig:
        """``DOCUSIGN_ENVIRONMENT`` = ``demo`` (the default) or ``production``; ``DOCUSIGN_BASE_URL`` replaces
        the account server with one that serves DocuSign's paths (the simulator);
        ``DOCUSIGN_CONNECT_HMAC_KEYS``: the account's Connect HMAC keys, comma-separated (up to DocuSign's
        100, two while one is being replaced)."""
        environment = (environ.get("DOCUSIGN_ENVIRONMENT") or "demo").strip().lower()
        if environment not in ACCOUNT_SERVERS:
            raise ValueError(f"DOCUSIGN_ENVIRONMENT is 'demo' or 'production', not {environment!r}")
        base = (environ.get("DOCUSIGN_BASE_URL") or "").strip().rstrip("/")
        keys = tuple(k.strip() for k in (environ.get("DOCUSIGN_CONNECT_HMAC_KEYS") or "").split(",") if k.strip())
        return cls(environment=environment, account_server=base or ACCOUNT_SERVERS[environment],
                   simulated=bool(base), hmac_keys=keys)
