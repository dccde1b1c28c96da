"""Resumable uploads: above 5 MB, in chunks of a multiple of 256 KiB, going on after an interruption from
where Google says the session stands."""

from __future__ import annotations

import hashlib
import os
import re

import pytest
from drive_flows import action, connect

from hub_google_drive.simulator import CHUNK
from hub_google_drive.testing import CHUNK_SIZE

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")

MB12 = 12 * 1024 * 1024


async def hub_file(client, tenant, content: bytes) -> str:
    path = f"jobs/1/{hashlib.sha256(content).hexdigest()[:12]}.bin"
    created = await client.post("/v1/files", headers=tenant.headers, data={"path": path},
                                files={"file": ("upload.bin", content, "application/octet-stream")})
    assert created.status_code in (200, 201), created.text
    return created.json()["id"]


def chunk_ranges(drive) -> list[str]:
    return [e.request.headers.get("content-range", "") for e in drive.logged(
        lambda r: r.method == "PUT" and r.path.startswith("/upload/"))]


async def test_a_12_mb_upload_interrupted_after_the_second_chunk_resumes_with_identical_bytes(client, tenant, drive):
    await connect(client, tenant)
    content = os.urandom(MB12)
    file_id = await hub_file(client, tenant, content)
    await action(client, tenant, "create_job_folder", {"job_id": "job-1", "name": "Job 1"})
    kept = 2 * CHUNK  # the network failed half way through chunk 3; Drive kept its first 512 KiB
    drive.interrupt_upload(after_chunks=2, keep=kept)

    out = await action(client, tenant, "upload_file", {"job_id": "job-1", "name": "drone-survey.bin",
                                                       "file_id": file_id})

    stored = drive.files[out["file_id"]].content
    assert len(stored) == MB12 and hashlib.sha256(stored).digest() == hashlib.sha256(content).digest()
    ranges = chunk_ranges(drive)
    assert ranges[:3] == [f"bytes 0-{CHUNK_SIZE - 1}/{MB12}", f"bytes {CHUNK_SIZE}-{2 * CHUNK_SIZE - 1}/{MB12}",
                          f"bytes {2 * CHUNK_SIZE}-{3 * CHUNK_SIZE - 1}/{MB12}"]
    assert ranges[3] == f"bytes */{MB12}", "after the failure the upload did not ask the session where it stands"
    resumed_at = 2 * CHUNK_SIZE + kept
    assert ranges[4].startswith(f"bytes {resumed_at}-"), "the upload did not go on from the byte Drive has"
    sent = [tuple(map(int, re.fullmatch(r"bytes (\d+)-(\d+)/\d+", r).groups())) for r in ranges if "*" not in r]
    assert all((last - first + 1) % CHUNK == 0 for first, last in sent[:-1]), "a chunk not of 256 KiB blocks"
    lost = CHUNK_SIZE - kept
    assert sum(last - first + 1 for first, last in sent) == MB12 + lost, "more than what Drive lost was sent twice"
    assert drive.calls("/upload/", method="POST") == 1, "one session, not a second upload"


async def test_an_upload_above_5_mb_goes_resumable_and_one_at_5_mb_goes_multipart(client, tenant, drive):
    await connect(client, tenant)
    await action(client, tenant, "create_job_folder", {"job_id": "job-1", "name": "Job 1"})

    for size, kind in ((5 * 1024 * 1024, "multipart"), (5 * 1024 * 1024 + 1, "resumable")):
        content = os.urandom(size)
        out = await action(client, tenant, "upload_file", {"job_id": "job-1", "name": f"{size}.bin",
                                                           "file_id": await hub_file(client, tenant, content)})
        assert drive.files[out["file_id"]].content == content
        started = drive.logged(lambda r: r.method == "POST" and r.path.startswith("/upload/"))[-1]
        assert started.request.query["uploadType"] == kind
