"""The Drive actions: ``create_job_folder``, ``upload_file``, ``share_folder``, ``list_folder``."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Annotated, Literal

import msgspec

from hub import NotFound, ProviderError, ValidationFailed
from hub_google_drive.client import Drive
from hub_google_drive.config import FOLDER_MIME, Hosts
from hub_google_drive.syncs import JOB_FOLDER, folder_link, job_folder_id, open_hub_file, upload

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class CreateJobFolderIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    job_id: Id
    name: Name
    parent_id: Id | None = None
    """The folder to create it in (default: the connection's ``jobs_parent_folder_id``, else My Drive)."""


class FolderOut(msgspec.Struct, kw_only=True):
    job_id: str
    folder_id: str
    web_view_link: str
    created: bool
    """False: the job already had this folder (a new name renamed it)."""


class Destination(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    folder_id: Id | None = None
    job_id: Id | None = None
    """The job whose folder to use (made if the job has none yet)."""

    def __post_init__(self) -> None:
        if (self.folder_id is None) == (self.job_id is None):
            raise ValueError("give folder_id or job_id, exactly one")


class UploadFileIn(Destination, forbid_unknown_fields=True, kw_only=True):
    name: Name
    mime_type: Name = "application/octet-stream"
    content_base64: str | None = None
    file_id: Id | None = None
    """A file the hub keeps (``POST /v1/files``): read in chunks, never whole into memory."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.content_base64 is None) == (self.file_id is None):
            raise ValueError("give content_base64 or file_id, exactly one")


class UploadFileOut(msgspec.Struct, kw_only=True):
    file_id: str
    name: str
    web_view_link: str | None
    size: int
    md5_checksum: str | None = None


class ShareFolderIn(Destination, forbid_unknown_fields=True, kw_only=True):
    email: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
    role: Literal["reader", "writer"] = "reader"
    notify: bool = True
    """Google emails the person a link (with ``message``, if given)."""
    message: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class ShareFolderOut(msgspec.Struct, kw_only=True):
    folder_id: str
    permission_id: str
    email: str
    role: str


class ListFolderIn(Destination, forbid_unknown_fields=True, kw_only=True):
    page_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    page_token: str | None = None


class FolderItem(msgspec.Struct, kw_only=True):
    id: str
    name: str
    mime_type: str
    is_folder: bool
    size: int | None = None
    modified_time: str | None = None
    web_view_link: str | None = None


class ListFolderOut(msgspec.Struct, kw_only=True):
    folder_id: str
    files: list[FolderItem]
    next_page_token: str | None = None


async def _folder(ctx, data: Destination, *, create: bool) -> str:
    if data.folder_id:
        return data.folder_id
    if create:
        return await job_folder_id(ctx, data.job_id)
    mapped = (await ctx.external_ids(JOB_FOLDER, [data.job_id])).get(data.job_id)
    if mapped is None:
        raise NotFound(f"job {data.job_id} has no Drive folder yet (create_job_folder)", code="job_folder_not_found")
    return mapped


def make_actions(hosts: Hosts):
    async def create_job_folder(ctx, data: CreateJobFolderIn) -> FolderOut:
        record = {"id": data.job_id, "name": data.name, "parent_id": data.parent_id}
        result = (await ctx.push(JOB_FOLDER, [{k: v for k, v in record.items() if v is not None}]))[data.job_id]
        if result.outcome == "failed" or not result.external_id:
            raise ProviderError(f"Google Drive did not create the folder: {result.error}")
        folder = result.external_id
        return FolderOut(job_id=data.job_id, folder_id=folder, web_view_link=folder_link(folder),
                         created=result.outcome == "created")

    async def upload_file(ctx, data: UploadFileIn) -> UploadFileOut:
        if data.content_base64 is not None:
            try:
                content = base64.b64decode(data.content_base64, validate=True)
            except (binascii.Error, ValueError):
                raise ValidationFailed("content_base64 is not valid base64", code="invalid_action_input") from None
            stream, size = io.BytesIO(content), len(content)
        else:
            try:
                stream, size = await open_hub_file(ctx, data.file_id)
            except LookupError as exc:
                raise NotFound(str(exc), code="file_not_found") from None
        try:
            folder = await _folder(ctx, data, create=True)
            drive = await Drive.of(hosts, ctx)
            uploaded = await upload(drive, name=data.name, mime_type=data.mime_type, stream=stream, size=size,
                                    parent_id=folder)
        finally:
            stream.close()
        return UploadFileOut(file_id=uploaded["id"], name=uploaded.get("name", data.name),
                             web_view_link=uploaded.get("webViewLink"), size=int(uploaded.get("size") or size),
                             md5_checksum=uploaded.get("md5Checksum"))

    async def share_folder(ctx, data: ShareFolderIn) -> ShareFolderOut:
        folder = await _folder(ctx, data, create=False)
        drive = await Drive.of(hosts, ctx)
        permission = await drive.share(folder, data.email, data.role, data.notify, data.message)
        return ShareFolderOut(folder_id=folder, permission_id=permission["id"], email=data.email,
                              role=permission.get("role", data.role))

    async def list_folder(ctx, data: ListFolderIn) -> ListFolderOut:
        folder = await _folder(ctx, data, create=False)
        drive = await Drive.of(hosts, ctx)
        body = await drive.list_folder(folder, data.page_token, data.page_size)
        files = [FolderItem(id=f["id"], name=f.get("name", ""), mime_type=f.get("mimeType", ""),
                            is_folder=f.get("mimeType") == FOLDER_MIME, size=int(f["size"]) if f.get("size") else None,
                            modified_time=f.get("modifiedTime"), web_view_link=f.get("webViewLink"))
                 for f in body.get("files") or []]
        return ListFolderOut(folder_id=folder, files=files, next_page_token=body.get("nextPageToken"))

    return create_job_folder, upload_file, share_folder, list_folder
