"""The test provider passes the conformance suite every provider plugin runs."""

import pytest

from hub.testing.conformance import conformance_suite
from tests.testprovider.conformance import TestOAuthAdapter

TestTestOAuthConformance = conformance_suite(TestOAuthAdapter())


@pytest.fixture
def hub_environ(provider):
    return TestOAuthAdapter().environ(provider)


class _RecordingClient:
    """The app's test client, keeping every body POSTed through it."""

    def __init__(self, client) -> None:
        self._client, self.posted = client, []

    async def post(self, path, **kwargs):
        self.posted.append((path, kwargs.get("content")))
        return await self._client.post(path, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


class _UnsignedBodyAdapter(TestOAuthAdapter):
    signs_body = False


async def test_the_webhook_check_sends_no_tampered_body_for_a_provider_that_signs_none(client, hub, tenant, provider):
    """Google's push notifications are empty POSTs with a channel token: there is no body to tamper with.
    The check still refuses the wrong secret and accepts (once) the good one."""
    suite = conformance_suite(_UnsignedBodyAdapter())()
    recording = _RecordingClient(client)
    await suite.test_webhooks_good_accepted_tampered_or_wrong_secret_rejected_redelivery_once(
        recording, hub, tenant, provider)
    bodies = [body for path, body in recording.posted if path.startswith("/v1/webhooks/")]
    assert len(bodies) == 3  # the wrong secret once, the good one twice: no tampered copy
    assert len(set(bodies)) == 1  # the test provider's wrong-secret body is the good body, signed otherwise
