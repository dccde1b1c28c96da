"""Rate limits a provider derives from a connection's settings (``ProviderInfo.connection_rate_limits``)."""

import msgspec

from hub.connections import connection_limits
from hub.types import ProviderInfo, RateLimit


class SenderSettings(msgspec.Struct, kw_only=True):
    messages_per_second: int = 1


DECLARED = (RateLimit(100, 1.0, concurrency=25),)


def per_sender(settings: SenderSettings) -> tuple[RateLimit, ...]:
    return (RateLimit(settings.messages_per_second, 1.0, scope="messages"),)


def test_settings_add_their_limits_to_the_declared_ones():
    info = ProviderInfo(slug="sms", title="SMS", category="messaging", auth_kind="api_key", settings=SenderSettings,
                        rate_limits=DECLARED, connection_rate_limits=per_sender)
    assert connection_limits(info, SenderSettings()) == DECLARED + (RateLimit(1, 1.0, scope="messages"),)
    assert connection_limits(info, SenderSettings(messages_per_second=100)) == \
        DECLARED + (RateLimit(100, 1.0, scope="messages"),)


def test_without_a_callable_the_declared_limits_stand():
    info = ProviderInfo(slug="sms", title="SMS", category="messaging", auth_kind="api_key", rate_limits=DECLARED)
    assert connection_limits(info, {}) is DECLARED
