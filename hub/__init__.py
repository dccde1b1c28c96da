"""The integration hub's public surface for plugin authors.

Everything a provider plugin needs is importable from here; the rest of ``hub`` is the core's own.
"""

from hub.auth import ApiKeyAuth, OAuth2, pkce_pair
from hub.context import ConnectionContext, EventContext
from hub.errors import (
    Conflict,
    CredentialsRejected,
    HubError,
    InvalidRequest,
    NotConnected,
    NotFound,
    PluginError,
    ProviderError,
    Unauthorized,
    ValidationFailed,
)
from hub.handlers import (
    Action,
    EntityMapper,
    InboundRecord,
    InboundSync,
    NewEvent,
    OutboundItem,
    OutboundSync,
    Page,
    PushResult,
    SyncHandler,
    VerifiedEvent,
    WebhookOutcome,
    WebhookReply,
    WebhookRequest,
    WebhookVerifier,
)
from hub.hookspecs import hookimpl
from hub.http import ConnectionHttp, ProviderHttp
from hub.types import AccountInfo, HubEvent, ProviderInfo, RateLimit, TokenSet

__version__ = "0.1.0"

__all__ = [
    "AccountInfo",
    "Action",
    "ApiKeyAuth",
    "Conflict",
    "ConnectionContext",
    "ConnectionHttp",
    "CredentialsRejected",
    "EntityMapper",
    "EventContext",
    "hookimpl",
    "HubError",
    "HubEvent",
    "InboundRecord",
    "InboundSync",
    "InvalidRequest",
    "NewEvent",
    "NotConnected",
    "NotFound",
    "OAuth2",
    "OutboundItem",
    "OutboundSync",
    "Page",
    "pkce_pair",
    "PluginError",
    "ProviderError",
    "ProviderHttp",
    "ProviderInfo",
    "PushResult",
    "RateLimit",
    "SyncHandler",
    "TokenSet",
    "Unauthorized",
    "ValidationFailed",
    "VerifiedEvent",
    "WebhookOutcome",
    "WebhookReply",
    "WebhookRequest",
    "WebhookVerifier",
    "__version__",
]
