"""Where QuickBooks lives (sandbox or production, or one override base URL such as the simulator's) and the
settings a tenant can change on its connection (the origin's settings panel)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from hub import RateLimit

SLUG = "quickbooks"
SCOPE = "com.intuit.quickbooks.accounting"
MINOR_VERSION = "75"
API_HOSTS = {
    "production": "https://quickbooks.api.intuit.com",
    "sandbox": "https://sandbox-quickbooks.api.intuit.com",
}
RATE_LIMITS = (RateLimit(requests=500, per_seconds=60, concurrency=10),
               RateLimit(requests=40, per_seconds=60, scope="batch"))
"""Per company (connection): 500 requests a minute and 10 at once, of which at most 40 batch requests a minute."""
AUTHORIZE_URL = "https://appcenter.intuit.com/connect/oauth2"
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
REVOKE_URL = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"


@dataclass(frozen=True, kw_only=True)
class Hosts:
    api: str
    authorize: str
    token: str
    revoke: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Hosts:
        """``QUICKBOOKS_ENVIRONMENT`` = ``sandbox`` (the default) or ``production``. ``QUICKBOOKS_BASE_URL``
        replaces every Intuit host with one server that serves Intuit's paths (the simulator)."""
        base = (environ.get("QUICKBOOKS_BASE_URL") or "").rstrip("/")
        if base:
            return cls(api=base, authorize=f"{base}/connect/oauth2", token=f"{base}/oauth2/v1/tokens/bearer",
                       revoke=f"{base}/v2/oauth2/tokens/revoke")
        environment = (environ.get("QUICKBOOKS_ENVIRONMENT") or "sandbox").strip().lower()
        if environment not in API_HOSTS:
            raise ValueError(f"QUICKBOOKS_ENVIRONMENT is 'sandbox' or 'production', not {environment!r}")
        return cls(api=API_HOSTS[environment], authorize=AUTHORIZE_URL, token=TOKEN_URL, revoke=REVOKE_URL)


class QuickBooksSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A connection's settings (``PATCH /v1/connections/quickbooks`` with ``settings``). The import interval
    is not one of them: it is the hub's own per-connection schedule of the payment pull, set by the same PATCH
    with ``{"sync_schedules": {"payment": {"every_seconds": 900}}}`` (hourly unless changed)."""

    auto_sync_clients: bool = True
    """A ``client.created`` / ``client.updated`` event the tenant publishes pushes that client."""
    auto_sync_vendors: bool = True
    auto_sync_invoices: bool = True
    """An ``invoice.created`` event pushes that invoice (and its client first, if QuickBooks lacks it)."""
    import_payments: bool = True
    """Payments are read from QuickBooks on the schedule and on its webhooks."""
