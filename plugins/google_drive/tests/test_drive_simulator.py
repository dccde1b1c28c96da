"""The simulator on its own, as demo mode runs it: Drive's push notifications delivered over HTTP to a hub
on this machine, and never anywhere else."""

from __future__ import annotations

import time

import pytest

from hub.testing import wait_for
from hub.testing.simulator import Request, Response, Simulator
from hub_google_drive.simulator import Channel, GoogleDriveSimulator

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")


class Hub(Simulator):
    def handle(self, request: Request) -> Response:
        return Response(200)


async def test_a_delivering_simulator_posts_notifications_to_a_local_hub_only():
    with Hub() as hub, GoogleDriveSimulator(deliver=True) as drive:
        for channel_id, address in (("local", f"{hub.url}/v1/webhooks/google_drive/c1"),
                                    ("remote", "https://hub.example.com/v1/webhooks/google_drive/c2")):
            drive.channels[channel_id] = Channel(id=channel_id, resource_id="r", address=address, token="t",
                                                 expiration_ms=int((time.time() + 3600) * 1000), page_token="1")
        drive.add_file("notes.txt", b"x")

        async def delivered():
            return hub.logged(lambda r: r.path == "/v1/webhooks/google_drive/c1")

        (post,) = await wait_for(delivered, timeout=10)
        assert (post.request.headers["x-goog-channel-id"], post.request.headers["x-goog-resource-state"]) == (
            "local", "change")
        assert post.request.headers["x-goog-channel-token"] == "t"
        assert [address for address, _, _ in drive.notifications()] == [
            "https://hub.example.com/v1/webhooks/google_drive/c2"]  # kept, never sent off this machine
