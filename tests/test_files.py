"""Tenants' files: ``/v1/files`` and the ``ctx.files`` plugins use, one file store behind both."""

from __future__ import annotations

import asyncio
import hashlib
import os

import msgspec
import pytest
from sqlalchemy import func, select

from hub.db.models import File
from hub.testing import new_tenant

PDF = b"%PDF-1.4\n" + os.urandom(4096) + b"\n%%EOF\n"


async def upload(client, tenant, path: str, content: bytes, content_type: str = "application/pdf"):
    return await client.post("/v1/files", headers=tenant.headers, data={"path": path},
                             files={"file": ("ignored.bin", content, content_type)})


def blobs(hub) -> list[str]:
    root = hub.files.root
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_an_upload_is_listed_described_and_downloaded_byte_for_byte(client, hub, tenant):
    response = await upload(client, tenant, "contracts/c-42/draft.pdf", PDF)

    assert response.status_code == 201, response.text
    made = response.json()
    assert (made["path"], made["name"], made["content_type"], made["size"]) == (
        "contracts/c-42/draft.pdf", "draft.pdf", "application/pdf", len(PDF))
    assert made["sha256"] == hashlib.sha256(PDF).hexdigest()
    described = (await client.get(f"/v1/files/{made['id']}", headers=tenant.headers)).json()
    assert described == made
    content = await client.get(f"/v1/files/{made['id']}/content", headers=tenant.headers)
    assert content.status_code == 200
    assert content.content == PDF
    assert content.headers["content-type"] == "application/pdf"
    assert 'filename="draft.pdf"' in content.headers["content-disposition"]
    await upload(client, tenant, "contracts/c-43/draft.pdf", b"other", "text/plain")
    await upload(client, tenant, "photos/1.jpg", b"jpeg", "image/jpeg")
    listed = (await client.get("/v1/files?prefix=contracts/", headers=tenant.headers)).json()
    assert [f["path"] for f in listed] == ["contracts/c-42/draft.pdf", "contracts/c-43/draft.pdf"]
    page = (await client.get("/v1/files?limit=1&after=contracts/c-43/draft.pdf", headers=tenant.headers)).json()
    assert [f["path"] for f in page] == ["photos/1.jpg"]


async def test_the_same_path_again_replaces_the_content_under_the_same_id_and_drops_the_old_bytes(
        client, hub, tenant):
    first = (await upload(client, tenant, "a/doc.pdf", PDF)).json()
    same = (await upload(client, tenant, "a/doc.pdf", PDF)).json()
    assert same == first  # identical content changes nothing, not even updated_at
    second = (await upload(client, tenant, "a/doc.pdf", b"version two", "text/plain")).json()

    assert second["id"] == first["id"] and second["sha256"] != first["sha256"]
    assert second["created_at"] == first["created_at"]
    assert (await client.get(f"/v1/files/{first['id']}/content", headers=tenant.headers)).content == b"version two"
    assert blobs(hub) == [f"{tenant.id}/{first['id']}/{second['sha256']}"]

    deleted = await client.delete(f"/v1/files/{first['id']}", headers=tenant.headers)
    assert deleted.status_code == 204
    assert (await client.get(f"/v1/files/{first['id']}", headers=tenant.headers)).status_code == 404
    assert blobs(hub) == []


async def test_another_tenants_file_is_a_404_for_read_download_and_delete(client, hub, tenant):
    made = (await upload(client, tenant, "secret/plan.pdf", PDF)).json()
    intruder = await new_tenant(client, "Intruder Inc")

    for method, path in (("GET", ""), ("GET", "/content"), ("DELETE", "")):
        response = await client.request(method, f"/v1/files/{made['id']}{path}", headers=intruder.headers)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    assert (await client.get("/v1/files", headers=intruder.headers)).json() == []
    assert (await client.get(f"/v1/files/{made['id']}/content", headers=tenant.headers)).content == PDF


@pytest.mark.parametrize("path", ["../escape.pdf", "/absolute.pdf", "a//b.pdf", "a/./b.pdf", "a\\b.pdf",
                                  "bad\x01name.pdf", "x" * 1025])
async def test_a_path_that_could_climb_out_or_differ_by_os_is_a_422_and_nothing_is_stored(
        client, hub, tenant, path):
    response = await upload(client, tenant, path, PDF)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_path"
    async with hub.session() as session:
        assert await session.scalar(select(func.count()).select_from(File)) == 0
    assert blobs(hub) == []


async def test_malformed_uploads_get_one_json_error_shape(client, hub, tenant):
    no_file = await client.post("/v1/files", headers=tenant.headers, data={"path": "a.pdf"},
                                files={"other": ("x", b"x", "text/plain")})
    bad_type = await upload(client, tenant, "a.pdf", PDF, content_type="not a type")
    not_multipart = await client.post("/v1/files", headers=tenant.headers, json={"path": "a.pdf"})

    for response in (no_file, bad_type, not_multipart):
        assert 400 <= response.status_code < 500, response.text
        assert set(response.json()["error"]) >= {"code", "message"}
    assert bad_type.json()["error"]["code"] == "invalid_content_type"


async def test_an_upload_over_the_limit_is_a_413(client, hub, tenant):
    limit = hub.settings.max_file_bytes
    hub.settings = msgspec.structs.replace(hub.settings, max_file_bytes=1024)
    try:
        from litestar.testing import AsyncTestClient

        from hub.api.app import create_app

        async with AsyncTestClient(create_app(hub), base_url=str(client.base_url)) as small:
            response = await upload(small, tenant, "big.bin", b"x" * 4096)
    finally:
        hub.settings = msgspec.structs.replace(hub.settings, max_file_bytes=limit)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "body_too_large"


async def test_plugins_store_find_read_and_stream_through_ctx_files(hub, tenant):
    files = hub.tenant_files(tenant.id)

    put = await files.put("contract/c-1/signed.pdf", PDF, content_type="application/pdf")

    assert (await files.find("contract/c-1/signed.pdf")) == put
    assert await files.find("contract/c-2/signed.pdf") is None
    assert await files.read(put.id) == PDF
    with await files.open(put.id) as blob:
        blob.seek(4)
        assert blob.read(4) == PDF[4:8]
    other = await hub.tenant_files(tenant.id).get(str(put.id))
    assert other == put


async def test_two_writers_of_one_new_path_make_one_file(hub, tenant):
    files = hub.tenant_files(tenant.id)

    made = await asyncio.gather(*(files.put("race/one.pdf", PDF, content_type="application/pdf") for _ in range(4)))

    assert len({f.id for f in made}) == 1
    async with hub.session() as session:
        assert await session.scalar(select(func.count()).select_from(File)) == 1
    assert blobs(hub) == [f"{tenant.id}/{made[0].id}/{made[0].sha256}"]
