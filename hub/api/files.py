"""``/v1/files``: a tenant's files — signed contracts the providers returned, documents to send on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.datastructures import ETag, UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import File as FileResponse
from sqlalchemy import select

from hub.api.deps import Db, HubDep, TenantId
from hub.db.models import File
from hub.errors import InvalidRequest, NotFound
from hub.files import StoredFile, get_row, stored, valid_content_type, valid_path

Limit = Annotated[int, QueryParameter(ge=1, le=500)]


@dataclass
class FileUpload:
    file: UploadFile
    path: str
    """Where the file goes within the tenant, e.g. ``contracts/c-42/draft.pdf``; an existing path is replaced."""
    content_type: str | None = None
    """Defaults to the part's own Content-Type."""


class FileController(Controller):
    path = "/v1/files"
    tags = ["files"]

    # Not given the request's ``db``: storing opens its own transaction, and on SQLite a second one
    # would wait on the first.
    @post("/", status_code=201, summary="Upload a file (multipart: file, path[, content_type])")
    async def upload_file(self, hub: HubDep, tenant_id: TenantId,
                          data: Annotated[FileUpload, Body(media_type=RequestEncodingType.MULTI_PART)]
                          ) -> StoredFile:
        if not isinstance(data.file, UploadFile):
            raise InvalidRequest("send the content as a file part named `file`", code="missing_file")
        content_type = data.content_type or data.file.content_type or "application/octet-stream"
        valid_path(data.path)
        valid_content_type(content_type)
        content = await data.file.read()
        return await hub.tenant_files(tenant_id).put(data.path, content, content_type=content_type)

    @get("/", summary="The tenant's files, by path (prefix filter; page with `after`, the last path seen)")
    async def list_files(self, db: Db, tenant_id: TenantId, prefix: FromQuery[str | None] = None,
                         after: FromQuery[str | None] = None, limit: Limit = 100) -> list[StoredFile]:
        stmt = select(File).where(File.tenant_id == tenant_id)
        if prefix:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(File.path.like(f"{escaped}%", escape="\\"))
        if after is not None:
            stmt = stmt.where(File.path > after)
        rows = await db.scalars(stmt.order_by(File.path).limit(limit))
        return [stored(row) for row in rows]

    @get("/{file_id:uuid}", summary="One file's metadata")
    async def get_file(self, db: Db, tenant_id: TenantId, file_id: FromPath[uuid.UUID]) -> StoredFile:
        return stored(await get_row(db, tenant_id, file_id))

    @get("/{file_id:uuid}/content", summary="The file's bytes", media_type="application/octet-stream")
    async def get_content(self, hub: HubDep, db: Db, tenant_id: TenantId, file_id: FromPath[uuid.UUID]) -> FileResponse:
        row = await get_row(db, tenant_id, file_id)
        blob = hub.files.blob_path(tenant_id, row.id, row.sha256)
        if not blob.exists():
            raise NotFound("the file's content is missing from the file store")
        return FileResponse(path=blob, filename=row.path.rsplit("/", 1)[-1], media_type=row.content_type,
                            etag=ETag(value=row.sha256), content_disposition_type="attachment")

    @delete("/{file_id:uuid}", status_code=204, summary="Delete a file and its content")
    async def delete_file(self, hub: HubDep, tenant_id: TenantId, file_id: FromPath[uuid.UUID]) -> None:
        await hub.tenant_files(tenant_id).delete(file_id)

