"""What the plugin syncs.

Outbound:
- ``job_folder``: a job's folder. The entity mapping (job id -> folder id) is what makes "the job's folder"
  one folder: pushing a job again is ``unchanged`` without a call; a new name renames it. The folder carries
  ``appProperties.hub_job_id``, so a push retried after a crash finds the folder it made instead of making
  another.
- ``document``: a job's documents (the core ``Document``: content from a hub file or inline) as files in the
  job's folder. A new ``version`` (or name, or content) uploads a new version of the same Drive file; an
  unchanged document makes no call.

Inbound:
- ``file_change``: changes to the files the hub created, read with Drive's page tokens (the cursor). One
  record per (file, version), so each change is stored, and announced as ``document.changed``, once. A
  full read lists the files as they are and announces nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import os
from collections.abc import Sequence
from typing import IO, Any

import msgspec

from hub import (
    Conflict,
    InboundRecord,
    NewEvent,
    NotFound,
    OutboundItem,
    Page,
    ProviderError,
    PushResult,
    ValidationFailed,
)
from hub.entities import Document
from hub_google_drive.client import Drive
from hub_google_drive.config import FOLDER_MIME, Hosts

log = logging.getLogger("hub_google_drive")

JOB_FOLDER, DOCUMENT, CHANGES = "job_folder", "document", "file_change"
REFUSED = (NotFound, ValidationFailed, Conflict)
"""Drive's answers about one record (a missing parent, a bad name): that record fails, the batch goes on."""


class JobFolder(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    id: str
    """The job's id in the hub's product."""
    name: str
    parent_id: str | None = None
    rename: bool = True
    """False: name the folder only if it is made now (a document's job without a folder yet); an existing
    folder keeps its name."""


class FileChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: str
    """``{file_id}@{version}``."""
    file_id: str
    name: str
    mime_type: str
    version: str
    modified_time: str | None = None
    web_view_link: str | None = None
    md5_checksum: str | None = None
    size: int | None = None
    trashed: bool = False
    by_hub: bool
    """The file is as the hub last wrote it (a change the hub made itself, or one that left the content and
    name alone, such as sharing)."""


def folder_link(folder_id: str) -> str:
    return f"https://drive.google.com/drive/folders/{folder_id}"


class PushJobFolders:
    def __init__(self, hosts: Hosts) -> None:
        self.hosts = hosts

    async def __call__(self, ctx, items: Sequence[OutboundItem]) -> list[PushResult]:
        drive = await Drive.of(self.hosts, ctx)
        results = []
        for item in items:
            folder: JobFolder = item.record
            # Drive's refusals (a missing parent: NotFound) are raised, not returned: folders go one at a time,
            # and the callers (create_job_folder, a document's first upload) answer with the error itself.
            if item.external_id and not folder.rename:
                results.append(PushResult(internal_id=item.internal_id, external_id=item.external_id,
                                          outcome="unchanged"))
                continue
            if item.external_id:
                found = await drive.rename(item.external_id, folder.name)
                outcome = "updated"
            else:
                parent = folder.parent_id or getattr(ctx.settings, "jobs_parent_folder_id", None)
                found = await drive.find_job_folder(folder.id) or await drive.create_folder(
                    folder.name, parent, {"hub_job_id": folder.id})
                outcome = "created"
            results.append(PushResult(internal_id=item.internal_id, external_id=found["id"], outcome=outcome,
                                      metadata={"web_view_link": found.get("webViewLink")}))
        return results


async def job_folder_id(ctx, job_id: str, name: str | None = None) -> str:
    """The job's folder, made (named ``name``, else after the job id) if the job has none yet."""
    mapped = (await ctx.external_ids(JOB_FOLDER, [job_id])).get(job_id)
    if mapped:
        return mapped
    # Another caller may make the folder first (the push waits for it): then it keeps the name it was given.
    record = {"id": job_id, "name": name or f"Job {job_id}", "rename": False}
    result = (await ctx.push(JOB_FOLDER, [record]))[job_id]
    if result.outcome == "failed" or not result.external_id:
        raise ProviderError(f"no Drive folder for job {job_id}: {result.error}")
    return result.external_id


class PushDocuments:
    def __init__(self, hosts: Hosts) -> None:
        self.hosts = hosts

    async def __call__(self, ctx, items: Sequence[OutboundItem]) -> list[PushResult]:
        drive = await Drive.of(self.hosts, ctx)
        results = []
        for item in items:
            document: Document = item.record
            try:
                stream, size = await document_content(ctx, document)
            except (ValueError, LookupError) as exc:
                results.append(PushResult(internal_id=item.internal_id, outcome="failed", error=str(exc)))
                continue
            try:
                uploaded = await self._upload(ctx, drive, item, document, stream, size)
            except REFUSED as exc:
                results.append(PushResult(internal_id=item.internal_id, outcome="failed", error=exc.message))
                continue
            finally:
                stream.close()
            results.append(PushResult(internal_id=item.internal_id, external_id=uploaded["id"],
                                      outcome="updated" if uploaded["id"] == item.external_id else "created",
                                      metadata={"web_view_link": uploaded.get("webViewLink"),
                                                "version": uploaded.get("version")}))
        return results

    @staticmethod
    async def _upload(ctx, drive: Drive, item: OutboundItem, document: Document, stream: IO[bytes], size: int
                      ) -> dict[str, Any]:
        if item.external_id:
            try:
                return await upload(drive, name=document.name, mime_type=document.mime_type, stream=stream,
                                    size=size, file_id=item.external_id, document_id=document.id)
            except NotFound:  # someone deleted the file in Drive: the new version becomes a new file
                stream.seek(0)
        folder = await job_folder_id(ctx, document.job_id)
        return await upload(drive, name=document.name, mime_type=document.mime_type, stream=stream, size=size,
                            parent_id=folder, document_id=document.id)


async def document_content(ctx, document: Document) -> tuple[IO[bytes], int]:
    if (document.file_id is None) == (document.content_base64 is None):
        raise ValueError("a document has either file_id (a hub file) or content_base64, not both or neither")
    if document.content_base64 is not None:
        try:
            data = base64.b64decode(document.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("content_base64 is not valid base64") from None
        return io.BytesIO(data), len(data)
    return await open_hub_file(ctx, document.file_id)


async def open_hub_file(ctx, file_id: str) -> tuple[IO[bytes], int]:
    """A hub file (``ctx.files``), opened for chunked reading; ``LookupError`` when the tenant has no such file."""
    from hub import NotFound

    try:
        stream = await ctx.files.open(file_id)
    except NotFound:
        raise LookupError(f"no hub file {file_id}") from None
    return stream, os.fstat(stream.fileno()).st_size


async def upload(drive: Drive, *, name: str, mime_type: str, stream: IO[bytes], size: int,
                 parent_id: str | None = None, file_id: str | None = None, document_id: str | None = None
                 ) -> dict[str, Any]:
    """Upload, marking the file with what the hub wrote (``hub_md5``, ``hub_name``) so a change
    notification can tell the hub's own writes from other people's."""
    md5 = hashlib.md5()
    for block in iter(lambda: stream.read(1 << 20), b""):
        md5.update(block)
    stream.seek(0)
    properties = {"hub_md5": md5.hexdigest(), "hub_name": name[:100]}
    if document_id:
        properties["hub_document_id"] = document_id[:100]
    return await drive.upload(name=name, mime_type=mime_type, stream=stream, size=size, parent_id=parent_id,
                              file_id=file_id, app_properties=properties)


def change_record(f: dict[str, Any]) -> dict[str, Any]:
    props = f.get("appProperties") or {}
    return msgspec.to_builtins(FileChange(
        id=f"{f['id']}@{f.get('version', '0')}", file_id=f["id"], name=f.get("name", ""),
        mime_type=f.get("mimeType", ""), version=str(f.get("version", "0")), modified_time=f.get("modifiedTime"),
        web_view_link=f.get("webViewLink"), md5_checksum=f.get("md5Checksum"),
        size=int(f["size"]) if f.get("size") else None, trashed=bool(f.get("trashed")),
        by_hub=f.get("mimeType") == FOLDER_MIME or (props.get("hub_md5") == f.get("md5Checksum")
                                                     and props.get("hub_name") == (f.get("name") or "")[:100]),
    ))


class PullChanges:
    def __init__(self, hosts: Hosts) -> None:
        self.hosts = hosts

    async def __call__(self, ctx, cursor: str | None) -> Page:
        drive = await Drive.of(self.hosts, ctx)
        if cursor is None:  # a full read: the files as they are, and where the changes start from
            start = await drive.start_page_token()
            files, token = [], None
            while True:
                page = await drive.list_files(token)
                files += page.get("files") or []
                token = page.get("nextPageToken")
                if not token:
                    break
            return Page(records=[InboundRecord(external_id=r["id"], data=r)
                                 for r in map(change_record, files)], cursor=start)
        body = await drive.changes(cursor)
        changed = [c["file"] for c in body.get("changes") or [] if c.get("file") and not c.get("removed")]
        documents = await ctx.internal_ids(DOCUMENT, [f["id"] for f in changed])
        records = []
        for f in changed:
            data = change_record(f)
            events = [] if data["by_hub"] else [NewEvent(type="document.changed", data={
                "file_id": data["file_id"], "document_id": documents.get(data["file_id"]), "name": data["name"],
                "mime_type": data["mime_type"], "version": data["version"], "modified_time": data["modified_time"],
                "web_view_link": data["web_view_link"], "trashed": data["trashed"]})]
            records.append(InboundRecord(external_id=data["id"], data=data, new_events=events))
        following = body.get("nextPageToken")
        return Page(records=records, cursor=following or body.get("newStartPageToken") or cursor,
                    has_more=bool(following))
