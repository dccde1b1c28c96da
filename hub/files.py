"""Tenants' files: signed contracts, uploaded documents, anything a plugin stores or sends on.

A row in ``files`` names a file by a path within its tenant (``contract/c-42/signed.pdf``); its bytes live
in the file store, a directory every hub process shares (``HUB_FILES_DIR``), one blob per version at
``{tenant}/{file id}/{sha256}``. A blob belongs to one row, so replacing or deleting a file can remove the
old bytes without asking who else holds them. The blob is written before the row that names it commits,
and an old blob is removed only after the row stopped naming it: a crash leaves at worst an unnamed blob,
never a row without its bytes.

Plugins use ``ctx.files`` (a ``TenantFiles``); tenants use ``/v1/files``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.models import File
from hub.errors import NotFound, ValidationFailed
from hub.ids import new_id

if TYPE_CHECKING:
    from hub.runtime import Hub

MAX_PATH = 1024
_CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;\s*[\w.+-]+=[\w.+\"-]+)*$")


class StoredFile(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    path: str
    name: str
    """The path's last segment."""
    content_type: str
    size: int
    sha256: str
    """Hex SHA-256 of the content."""
    created_at: datetime
    updated_at: datetime


def stored(row: File) -> StoredFile:
    return StoredFile(id=row.id, path=row.path, name=row.path.rsplit("/", 1)[-1], content_type=row.content_type,
                      size=row.size, sha256=row.sha256, created_at=row.created_at, updated_at=row.updated_at)


def valid_path(path: str) -> str:
    """A relative path of non-empty segments, none of them ``.`` or ``..``, without control characters or
    backslashes: the same name on every operating system and nothing that could climb out of a tenant."""
    if not isinstance(path, str) or not path or len(path) > MAX_PATH:
        raise ValidationFailed(f"a file path is 1 to {MAX_PATH} characters", code="invalid_path")
    segments = path.split("/")
    if (path.startswith("/") or "\\" in path or any(ord(c) < 32 or ord(c) == 127 for c in path)
            or any(s in ("", ".", "..") or len(s) > 255 for s in segments)):
        raise ValidationFailed("a file path is relative, with segments separated by '/', none empty, '.' or "
                               "'..', and no control characters or backslashes", code="invalid_path")
    return path


def valid_content_type(content_type: str) -> str:
    if not isinstance(content_type, str) or len(content_type) > 255 or not _CONTENT_TYPE.match(content_type):
        raise ValidationFailed("content_type is a MIME type such as application/pdf", code="invalid_content_type")
    return content_type


class FileStore:
    """The blobs, on a local (or shared) directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def blob_path(self, tenant_id: uuid.UUID, file_id: uuid.UUID, sha256: str) -> Path:
        return self.root / str(tenant_id) / str(file_id) / sha256

    def write(self, target: Path, content: bytes) -> None:
        """Write through a temporary file and rename, so a reader never sees half a blob."""
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def remove(self, target: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        with contextlib.suppress(OSError):  # the file's folder, once it holds no version
            target.parent.rmdir()


async def find_row(session: AsyncSession, tenant_id: uuid.UUID, path: str, *, lock: bool = False) -> File | None:
    stmt = select(File).where(File.tenant_id == tenant_id, File.path == path)
    return (await session.scalars(stmt.with_for_update() if lock else stmt)).first()


async def get_row(session: AsyncSession, tenant_id: uuid.UUID, file_id: uuid.UUID | str) -> File:
    try:
        key = file_id if isinstance(file_id, uuid.UUID) else uuid.UUID(str(file_id))
    except ValueError:
        raise NotFound("no such file") from None
    row = await session.get(File, key)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("no such file")
    return row


class TenantFiles:
    """One tenant's files, for plugins (``ctx.files``). Each call is its own transaction."""

    def __init__(self, hub: Hub, tenant_id: uuid.UUID) -> None:
        self._hub = hub
        self.tenant_id = tenant_id

    async def put(self, path: str, content: bytes, *, content_type: str) -> StoredFile:
        """Store ``content`` at ``path``. The same path again replaces the content and keeps the id;
        identical content (and type) changes nothing."""
        valid_path(path)
        valid_content_type(content_type)
        sha = hashlib.sha256(content).hexdigest()
        store = self._hub.files
        for attempt in (1, 2):
            written: Path | None = None
            old: tuple[uuid.UUID, str] | None = None
            try:
                async with self._hub.session(self.tenant_id) as session:
                    row = await find_row(session, self.tenant_id, path, lock=True)
                    if row is not None and row.sha256 == sha and row.content_type == content_type:
                        return stored(row)
                    old = (row.id, row.sha256) if row is not None else None
                    if row is None:
                        row = File(id=new_id(), tenant_id=self.tenant_id, path=path, created_at=self._hub.clock())
                        session.add(row)
                    written = store.blob_path(self.tenant_id, row.id, sha)
                    await asyncio.to_thread(store.write, written, content)
                    row.sha256, row.size, row.content_type = sha, len(content), content_type
                    row.updated_at = self._hub.clock()
                    await session.flush()
                    result = stored(row)
            except IntegrityError:
                # Another writer created this path first: take its row on the second pass.
                if written is not None:
                    store.remove(written)
                if attempt == 2:
                    raise
                continue
            except BaseException:
                if written is not None and (old is None or old[1] != sha):
                    store.remove(written)
                raise
            if old is not None and old[1] != sha:
                store.remove(store.blob_path(self.tenant_id, old[0], old[1]))
            return result
        raise AssertionError("unreachable")

    async def get(self, file_id: uuid.UUID | str) -> StoredFile:
        async with self._hub.session(self.tenant_id) as session:
            return stored(await get_row(session, self.tenant_id, file_id))

    async def find(self, path: str) -> StoredFile | None:
        async with self._hub.session(self.tenant_id) as session:
            row = await find_row(session, self.tenant_id, valid_path(path))
            return stored(row) if row is not None else None

    async def open(self, file_id: uuid.UUID | str) -> BinaryIO:
        """The content as a readable, seekable binary file (the caller closes it), for chunked reads."""
        found = await self.get(file_id)
        try:
            return self._hub.files.blob_path(self.tenant_id, found.id, found.sha256).open("rb")
        except FileNotFoundError:
            raise NotFound("the file's content is missing from the file store") from None

    async def read(self, file_id: uuid.UUID | str) -> bytes:
        with await self.open(file_id) as blob:
            return await asyncio.to_thread(blob.read)

    async def delete(self, file_id: uuid.UUID | str) -> None:
        async with self._hub.session(self.tenant_id) as session:
            row = await get_row(session, self.tenant_id, file_id)
            blob = self._hub.files.blob_path(self.tenant_id, row.id, row.sha256)
            await session.delete(row)
        self._hub.files.remove(blob)
