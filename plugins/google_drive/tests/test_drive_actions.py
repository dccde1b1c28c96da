"""Connecting to Google, and the four actions against the Drive simulator."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import parse_qs, urlsplit

import pytest
from drive_flows import action, connect

from hub.testing.flows import authorize, connect_oauth
from hub_google_drive.simulator import FOLDER, USER

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")


async def test_consent_asks_for_drive_file_offline_with_pkce_and_names_the_drive_user(client, tenant, drive):
    url = await authorize(client, tenant, "google_drive")
    query = parse_qs(urlsplit(url).query)
    assert query["scope"] == ["https://www.googleapis.com/auth/drive.file"]
    assert (query["access_type"], query["prompt"]) == (["offline"], ["consent"])
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    connection = await connect(client, tenant)
    assert connection["external_account_id"] == USER["permissionId"]
    assert connection["external_account_name"] == USER["emailAddress"]
    assert drive.refresh_tokens, "Google issued no refresh token: offline access was not asked for"


async def test_a_job_folder_asked_for_twice_is_created_once_even_at_the_same_time(client, tenant, drive):
    await connect(client, tenant)
    body = {"job_id": "job-7", "name": "7 Birch Ln addition"}
    first, second = await asyncio.gather(action(client, tenant, "create_job_folder", body),
                                         action(client, tenant, "create_job_folder", body))
    assert first["folder_id"] == second["folder_id"]
    assert sorted([first["created"], second["created"]]) == [False, True]
    assert [f.name for f in drive.folders()] == ["7 Birch Ln addition"]
    assert drive.folders()[0].app_properties == {"hub_job_id": "job-7"}

    calls = drive.calls("/drive/v3/")
    third = await action(client, tenant, "create_job_folder", body)
    assert (third["folder_id"], third["created"]) == (first["folder_id"], False)
    assert drive.calls("/drive/v3/") == calls, "asking again for the same folder called Drive"
    assert third["web_view_link"] == f"https://drive.google.com/drive/folders/{first['folder_id']}"

    renamed = await action(client, tenant, "create_job_folder", body | {"name": "7 Birch Ln (phase 2)"})
    assert renamed["folder_id"] == first["folder_id"] and drive.folders()[0].name == "7 Birch Ln (phase 2)"


async def test_a_job_folder_goes_under_the_given_parent_and_a_missing_parent_is_a_clean_404(client, tenant, drive):
    await connect(client, tenant)
    parent = await action(client, tenant, "create_job_folder", {"job_id": "clients", "name": "Clients"})
    child = await action(client, tenant, "create_job_folder",
                         {"job_id": "job-8", "name": "Job 8", "parent_id": parent["folder_id"]})
    assert [f.id for f in drive.children(parent["folder_id"])] == [child["folder_id"]]
    error = await action(client, tenant, "create_job_folder", {"job_id": "job-9", "name": "x", "parent_id": "nope"},
                         status=404)
    assert error["error"]["code"] == "drive_not_found" and "nope" in error["error"]["message"]
    assert len(drive.folders()) == 2


async def test_a_small_upload_is_one_multipart_request_and_returns_its_id_and_link(client, tenant, drive):
    await connect(client, tenant)
    folder = await action(client, tenant, "create_job_folder", {"job_id": "job-1", "name": "Job 1"})
    content = b"%PDF-1.7\n\x00\xff binary \r\n\r\n content"
    out = await action(client, tenant, "upload_file", {
        "job_id": "job-1", "name": "estimate.pdf", "mime_type": "application/pdf",
        "content_base64": base64.b64encode(content).decode()})
    stored = drive.files[out["file_id"]]
    assert stored.content == content and stored.parents == [folder["folder_id"]]
    assert stored.mime_type == "application/pdf" and out["size"] == len(content)
    assert out["web_view_link"] == f"https://drive.google.com/file/d/{out['file_id']}/view?usp=drivesdk"
    uploads = drive.logged(lambda r: r.path.startswith("/upload/"))
    assert [(e.request.method, e.request.query.get("uploadType")) for e in uploads] == [("POST", "multipart")]


async def test_an_upload_from_a_hub_file_reads_the_tenants_file(client, tenant, drive):
    await connect(client, tenant)
    created = await client.post("/v1/files", headers=tenant.headers, data={"path": "jobs/1/site.jpg"},
                                files={"file": ("site.jpg", b"\xff\xd8 jpeg bytes", "image/jpeg")})
    assert created.status_code in (200, 201), created.text
    folder = await action(client, tenant, "create_job_folder", {"job_id": "job-1", "name": "Job 1"})
    out = await action(client, tenant, "upload_file", {"folder_id": folder["folder_id"], "name": "site.jpg",
                                                       "mime_type": "image/jpeg", "file_id": created.json()["id"]})
    assert drive.files[out["file_id"]].content == b"\xff\xd8 jpeg bytes"
    missing = await action(client, tenant, "upload_file", {"folder_id": folder["folder_id"], "name": "x",
                                                           "file_id": "00000000-0000-0000-0000-000000000000"},
                           status=404)
    assert missing["error"]["code"] == "file_not_found"


async def test_bad_upload_input_is_a_422_and_reaches_no_drive(client, tenant, drive):
    await connect(client, tenant)
    before = drive.calls("/upload/")
    for body in ({"folder_id": "f", "name": "a", "content_base64": "AAAA", "file_id": "x"},  # two contents
                 {"folder_id": "f", "job_id": "j", "name": "a", "content_base64": "AAAA"},  # two places
                 {"folder_id": "f", "name": "a"},  # no content
                 {"folder_id": "f", "name": "", "content_base64": "AAAA"}):
        error = await action(client, tenant, "upload_file", body, status=422)
        assert error["error"]["code"] == "invalid_action_input", error
    error = await action(client, tenant, "upload_file", {"folder_id": "f", "name": "a", "content_base64": "!!"},
                         status=422)
    assert "base64" in error["error"]["message"]
    assert drive.calls("/upload/") == before


async def test_share_folder_grants_the_role_with_or_without_googles_email(client, tenant, drive):
    await connect(client, tenant)
    folder = await action(client, tenant, "create_job_folder", {"job_id": "job-1", "name": "Job 1"})
    out = await action(client, tenant, "share_folder", {"job_id": "job-1", "email": "owner@client.example",
                                                        "role": "writer", "notify": False})
    assert (out["folder_id"], out["role"], out["email"]) == (folder["folder_id"], "writer", "owner@client.example")
    await action(client, tenant, "share_folder", {"folder_id": folder["folder_id"], "email": "sub@trade.example",
                                                  "message": "Plans for Monday"})
    permissions = {p["emailAddress"]: p for p in drive.files[folder["folder_id"]].permissions}
    assert permissions["owner@client.example"]["role"] == "writer"
    assert permissions["owner@client.example"]["notified"] is False
    assert (permissions["sub@trade.example"]["role"], permissions["sub@trade.example"]["notified"]) == ("reader", True)
    for bad in ({"job_id": "job-1", "email": "a@b.example", "role": "owner"},
                {"job_id": "job-1", "email": "not-an-email"}):
        error = await action(client, tenant, "share_folder", bad, status=422)
        assert error["error"]["code"] == "invalid_action_input"
    unknown = await action(client, tenant, "share_folder", {"job_id": "job-404", "email": "a@b.example"}, status=404)
    assert unknown["error"]["code"] == "job_folder_not_found"


async def test_list_folder_pages_through_what_is_in_a_jobs_folder(client, tenant, drive):
    await connect(client, tenant)
    folder = await action(client, tenant, "create_job_folder", {"job_id": "job-1", "name": "Job 1"})
    await action(client, tenant, "create_job_folder", {"job_id": "sub", "name": "Photos",
                                                       "parent_id": folder["folder_id"]})
    for name in ("b.txt", "a.txt"):
        await action(client, tenant, "upload_file", {"job_id": "job-1", "name": name, "mime_type": "text/plain",
                                                     "content_base64": base64.b64encode(name.encode()).decode()})
    first = await action(client, tenant, "list_folder", {"job_id": "job-1", "page_size": 2})
    assert [(f["name"], f["is_folder"]) for f in first["files"]] == [("Photos", True), ("a.txt", False)]
    assert first["files"][0]["mime_type"] == FOLDER and first["files"][1]["size"] == 5
    rest = await action(client, tenant, "list_folder", {"job_id": "job-1", "page_token": first["next_page_token"]})
    assert [f["name"] for f in rest["files"]] == ["b.txt"] and rest["next_page_token"] is None


async def test_another_tenants_job_folder_is_not_found(client, tenant, drive):
    from hub.testing.app import new_tenant

    await connect(client, tenant)
    await action(client, tenant, "create_job_folder", {"job_id": "job-1", "name": "Job 1"})
    other = await new_tenant(client)
    assert (await connect_oauth(client, other, "google_drive"))["status"] == ["connected"]
    for name, body in (("share_folder", {"job_id": "job-1", "email": "a@b.example"}),
                       ("list_folder", {"job_id": "job-1"})):
        response = await client.post(f"/v1/connections/google_drive/actions/{name}", json=body, headers=other.headers)
        assert response.status_code == 404 and response.json()["error"]["code"] == "job_folder_not_found"


async def test_googles_rate_limit_403_is_retried_by_the_hubs_client(client, tenant, drive):
    await connect(client, tenant)
    drive.fail_next(403, times=2, path="/drive/v3/files", retry_after=0)  # userRateLimitExceeded
    out = await action(client, tenant, "create_job_folder", {"job_id": "job-1", "name": "Job 1"})
    assert [f.id for f in drive.folders()] == [out["folder_id"]]
    answered = [(e.request.method, e.status) for e in drive.logged(lambda r: r.path == "/drive/v3/files")]
    assert answered == [("GET", 403), ("GET", 403), ("GET", 200), ("POST", 200)]  # look for it, then make it


async def test_a_documents_implicit_folder_never_renames_the_jobs_folder(client, hub, tenant, drive):
    """A document's upload makes its job's folder if it has none, named after the job. Had create_job_folder
    made it a moment before (the document's push waits behind it), its name stays."""
    from hub.connections import connection_context, get_connection

    await connect(client, tenant)
    await action(client, tenant, "create_job_folder", {"job_id": "job-1", "name": "12 Elm St"})
    async with hub.session(tenant.id) as session:
        ctx = await connection_context(hub, session, await get_connection(session, tenant.id, "google_drive"))
    calls = drive.calls()
    result = (await ctx.push("job_folder", [{"id": "job-1", "name": "Job job-1", "rename": False}]))["job-1"]
    assert result.outcome == "unchanged" and drive.calls() == calls
    assert [f.name for f in drive.folders()] == ["12 Elm St"]
