"""Push notifications: the hub's channel on Drive's changes, its token, its renewal before expiry on the
hub's periodic per-connection read, ``document.changed`` for changes the hub did not make, and the channel
stopped on disconnect."""

from __future__ import annotations

import base64

import pytest
from drive_flows import connect, deliver_notifications, run, sync
from sqlalchemy import func, select

from hub.db.models import Event, WebhookInbox
from hub.testing import run_jobs
from hub.testing.app import PUBLIC_URL

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")


async def read(client, hub, tenant, entity: str, **body) -> dict:
    run_id = await sync(client, tenant, entity, **body)
    await run_jobs(hub)
    result = await run(client, tenant, run_id)
    assert result["status"] == "completed", result
    return result


async def changed_events(hub) -> list[dict]:
    async with hub.session() as session:
        return [e.data for e in (await session.scalars(
            select(Event).where(Event.type == "document.changed").order_by(Event.seq))).all()]


async def watched(client, hub, tenant, drive) -> dict:
    connection = await connect(client, tenant)
    await read(client, hub, tenant, "push_channel", type="full")
    await read(client, hub, tenant, "file_change", type="full")  # where the changes start from
    assert await deliver_notifications(client, drive) == [200]  # Drive's "sync" message when it opened
    return connection


async def test_the_channel_watches_changes_at_the_connections_url_and_changes_by_others_are_announced(
        client, hub, tenant, drive):
    connection = await watched(client, hub, tenant, drive)
    (channel,) = drive.live_channels()
    assert channel.address == f"{PUBLIC_URL}/v1/webhooks/google_drive/{connection['id']}"
    assert channel.token and len(channel.token) == 64

    pushed = await read(client, hub, tenant, "document", records=[{
        "id": "doc-1", "job_id": "job-1", "name": "contract.pdf", "mime_type": "application/pdf",
        "content_base64": base64.b64encode(b"%PDF ours").decode(), "version": "1"}])
    assert pushed["created"] == 1
    assert set(await deliver_notifications(client, drive)) == {200}  # folder and file: the hub's own changes
    await run_jobs(hub)
    assert await changed_events(hub) == [], "the hub's own upload was announced as someone's change"

    (file,) = [f for f in drive.files.values() if f.name == "contract.pdf"]
    drive.edit_file(file.id, content=b"%PDF marked up by the owner")
    assert await deliver_notifications(client, drive) == [200]
    await run_jobs(hub)
    (event,) = await changed_events(hub)
    assert (event["file_id"], event["document_id"], event["name"]) == (file.id, "doc-1", "contract.pdf")
    assert event["version"] == str(drive.files[file.id].version)

    drive.edit_file(file.id, name="contract (owner's copy).pdf")
    for _ in range(2):  # a notification redelivered, and a periodic read on top: announced once
        await deliver_notifications(client, drive)
        await read(client, hub, tenant, "file_change")
    assert [e["name"] for e in await changed_events(hub)] == ["contract.pdf", "contract (owner's copy).pdf"]


async def test_a_wrong_channel_token_is_rejected_and_nothing_is_stored(client, hub, tenant, drive):
    await watched(client, hub, tenant, drive)
    (channel,) = drive.live_channels()
    drive.add_file("notes.txt", b"x")
    ((address, headers, body),) = drive.notifications()
    path = address.removeprefix(PUBLIC_URL)
    for forged in (headers | {"X-Goog-Channel-Token": "0" * 64}, {k: v for k, v in headers.items()
                                                                 if k != "X-Goog-Channel-Token"},
                   headers | {"X-Goog-Channel-ID": "another-channel"}):
        response = await client.post(path, content=body, headers=forged)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "invalid_signature"
    async with hub.session() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookInbox)) == 1  # the "sync" message only
    assert (await client.post(path, content=body, headers=headers)).status_code == 200


async def test_a_channel_near_its_expiry_is_renewed_on_the_periodic_read_and_stopped_on_disconnect(
        client, hub, tenant, drive):
    drive.channel_max_seconds = 3600  # Drive grants an hour: well inside the hub's renewal margin
    await watched(client, hub, tenant, drive)
    (first,) = drive.live_channels()
    calls = drive.calls("/drive/v3/changes/watch")
    await read(client, hub, tenant, "push_channel")
    (second,) = drive.live_channels()
    assert second.id != first.id and drive.channels[first.id].stopped
    assert drive.calls("/drive/v3/changes/watch") == calls + 1

    drive.channel_max_seconds = 7 * 24 * 3600
    await read(client, hub, tenant, "push_channel")  # renews once more (the hour-long one), then holds
    (third,) = drive.live_channels()
    await read(client, hub, tenant, "push_channel")
    assert drive.live_channels() == [third] and drive.calls("/drive/v3/changes/watch") == calls + 2

    response = await client.delete("/v1/connections/google_drive", headers=tenant.headers)  # and it stops
    assert response.status_code == 200 and response.json()["revoked_at_provider"] is True
    assert drive.channels[third.id].stopped and drive.live_channels() == [] and not drive.refresh_tokens


async def test_the_periodic_reads_are_scheduled_per_connection(client, hub, tenant, drive):
    from hub.sync.schedule import schedule_due_syncs

    await connect(client, tenant, periodic=True)
    async with hub.session() as session:
        assert await schedule_due_syncs(hub, session) == 2  # file_change and push_channel
    await run_jobs(hub)
    assert len(drive.live_channels()) == 1
