"""The Drive v3 operations the plugin uses, through google-api-python-client on the hub's HTTP client
(``gapi``). Each runs the blocking client in a worker thread; Google's errors become the hub's."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import IO, Any

import httpx
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload

from hub import Conflict, NotFound, ProviderError, ValidationFailed
from hub_google_drive.config import FOLDER_MIME, MULTIPART_MAX, Hosts
from hub_google_drive.gapi import RATE_LIMIT_REASONS, HubHttp, Send, drive_service

FILE_FIELDS = "id,name,mimeType,parents,webViewLink,md5Checksum,size,version,modifiedTime,trashed,appProperties"
MAX_RESUMES = 5
"""How often one resumable upload goes on after an interruption before it gives up."""


def google_error(exc: HttpError) -> tuple[int, str, str]:
    """(status, reason, message) from Google's error body ``{"error": {"code", "message", "errors": [...]}}``."""
    status = int(exc.resp.status)
    try:
        error = json.loads(exc.content)["error"]
        reason = (error.get("errors") or [{}])[0].get("reason") or error.get("status") or ""
        return status, str(reason), str(error.get("message") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return status, "", ""


def hub_error(exc: HttpError, what: str) -> Exception:
    status, reason, message = google_error(exc)
    text = f"Google Drive refused to {what} (HTTP {status}{f' {reason}' if reason else ''}): {message}".rstrip(": ")
    if status == 404:
        return NotFound(text, code="drive_not_found")
    if status in (400, 413):
        return ValidationFailed(text, code="drive_invalid_request")
    if status == 409:
        return Conflict(text, code="drive_conflict")
    if status == 403 and reason not in RATE_LIMIT_REASONS:  # Drive's policy says no (sharing limits, ...)
        return Conflict(text, code="drive_forbidden")
    return ProviderError(text)


class Drive:
    """One tenant's Drive, for the length of one piece of work (its access token is fetched once)."""

    def __init__(self, hosts: Hosts, send: Send, access_token: str) -> None:
        self.hosts = hosts
        self._send = send
        self._token = access_token

    @classmethod
    async def of(cls, hosts: Hosts, ctx) -> Drive:
        return cls(hosts, ctx.http.request, await ctx.access_token())

    async def _run(self, what: str, work: Callable[[Any, HubHttp], Any]) -> Any:
        http = HubHttp(self._send, asyncio.get_running_loop(), self._token, self.hosts.api_root)
        service = drive_service(self.hosts.api_root)
        try:
            return await asyncio.to_thread(work, service, http)
        except HttpError as exc:
            raise hub_error(exc, what) from None
        except httpx.HTTPError as exc:
            raise ProviderError(f"Google Drive could not be reached to {what} ({type(exc).__name__})") from None

    async def _execute(self, what: str, build: Callable[[Any], Any]) -> dict[str, Any]:
        return await self._run(what, lambda service, http: build(service).execute(http=http, num_retries=0))

    # -- account ----------------------------------------------------------------------------------------
    async def about(self) -> dict[str, Any]:
        return await self._execute("describe the account", lambda s: s.about().get(fields="user"))

    # -- files and folders -------------------------------------------------------------------------------
    async def create_folder(self, name: str, parent_id: str | None, app_properties: dict[str, str]) -> dict[str, Any]:
        body = {"name": name, "mimeType": FOLDER_MIME, "appProperties": app_properties}
        if parent_id:
            body["parents"] = [parent_id]
        return await self._execute("create the folder", lambda s: s.files().create(
            body=body, fields=FILE_FIELDS, supportsAllDrives=True))

    async def rename(self, file_id: str, name: str) -> dict[str, Any]:
        return await self._execute("rename the file", lambda s: s.files().update(
            fileId=file_id, body={"name": name}, fields=FILE_FIELDS, supportsAllDrives=True))

    async def find_job_folder(self, job_id: str) -> dict[str, Any] | None:
        """The folder made for this job before (``appProperties.hub_job_id``), if any."""
        query = (f"appProperties has {{ key='hub_job_id' and value='{job_id.replace(chr(39), '')}' }} "
                 f"and mimeType = '{FOLDER_MIME}' and trashed = false")
        body = await self._execute("look for the job's folder", lambda s: s.files().list(
            q=query, pageSize=1, fields="files(id,name,webViewLink)"))
        return (body.get("files") or [None])[0]

    async def get(self, file_id: str) -> dict[str, Any]:
        return await self._execute("read the file", lambda s: s.files().get(
            fileId=file_id, fields=FILE_FIELDS, supportsAllDrives=True))

    async def list_folder(self, folder_id: str, page_token: str | None, page_size: int) -> dict[str, Any]:
        query = f"'{folder_id.replace(chr(39), '')}' in parents and trashed = false"
        return await self._execute("list the folder", lambda s: s.files().list(
            q=query, pageSize=page_size, pageToken=page_token, orderBy="folder,name",
            fields=f"nextPageToken,files({FILE_FIELDS})", supportsAllDrives=True, includeItemsFromAllDrives=True))

    async def list_files(self, page_token: str | None) -> dict[str, Any]:
        """Every file the hub can see (with ``drive.file``: the ones it created), a page at a time."""
        return await self._execute("list the files", lambda s: s.files().list(
            q="trashed = false", pageSize=1000, pageToken=page_token,
            fields=f"nextPageToken,files({FILE_FIELDS})"))

    async def upload(self, *, name: str, mime_type: str, stream: IO[bytes], size: int,
                     parent_id: str | None = None, file_id: str | None = None,
                     app_properties: dict[str, str] | None = None) -> dict[str, Any]:
        """Create a file (or, with ``file_id``, upload a new version of it): one multipart request up to
        5 MB, else a resumable session in chunks of ``hosts.chunk_size``. An interrupted chunk is not sent
        again blindly: the client asks the session which bytes it holds (``308`` + ``Range``) and sends
        the rest from there."""
        resumable = size > MULTIPART_MAX
        media = MediaIoBaseUpload(stream, mimetype=mime_type, chunksize=self.hosts.chunk_size, resumable=resumable)
        body: dict[str, Any] = {"name": name}
        if app_properties:
            body["appProperties"] = app_properties
        if file_id is None and parent_id:
            body["parents"] = [parent_id]

        def work(service, http: HubHttp) -> dict[str, Any]:
            files = service.files()
            if file_id is None:
                request = files.create(body=body, media_body=media, fields=FILE_FIELDS, supportsAllDrives=True)
            else:
                request = files.update(fileId=file_id, body=body, media_body=media, fields=FILE_FIELDS,
                                       supportsAllDrives=True)
            if not resumable:
                return request.execute(http=http, num_retries=0)
            response, interruptions = None, 0
            while response is None:
                try:
                    _, response = request.next_chunk(http=http, num_retries=0)
                except (httpx.TransportError, HttpError) as exc:
                    if request.resumable_uri is None or not _worth_resuming(exc) or interruptions >= MAX_RESUMES:
                        raise
                    interruptions += 1
                    time.sleep(min(8.0, 0.25 * (2 ** (interruptions - 1))) if interruptions > 1 else 0)
            return response

        return await self._run("upload the file", work)

    # -- sharing -----------------------------------------------------------------------------------------
    async def share(self, file_id: str, email: str, role: str, notify: bool, message: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"fileId": file_id, "sendNotificationEmail": notify, "supportsAllDrives": True,
                                  "fields": "id,type,role,emailAddress"}
        if notify and message:
            params["emailMessage"] = message
        return await self._execute("share the folder", lambda s: s.permissions().create(
            body={"type": "user", "role": role, "emailAddress": email}, **params))

    # -- changes and push channels -----------------------------------------------------------------------
    async def start_page_token(self) -> str:
        body = await self._execute("start reading changes", lambda s: s.changes().getStartPageToken())
        return body["startPageToken"]

    async def changes(self, page_token: str) -> dict[str, Any]:
        return await self._execute("read the changes", lambda s: s.changes().list(
            pageToken=page_token, pageSize=1000, includeRemoved=True,
            fields=f"nextPageToken,newStartPageToken,changes(changeType,fileId,removed,time,file({FILE_FIELDS}))"))

    async def watch(self, page_token: str, channel_id: str, address: str, token: str, expiration_ms: int
                    ) -> dict[str, Any]:
        body = {"id": channel_id, "type": "web_hook", "address": address, "token": token,
                "expiration": str(expiration_ms)}
        return await self._execute("watch the changes", lambda s: s.changes().watch(pageToken=page_token, body=body))

    async def stop(self, channel_id: str, resource_id: str) -> None:
        await self._run("stop the channel", lambda service, http: service.channels().stop(
            body={"id": channel_id, "resourceId": resource_id}).execute(http=http, num_retries=0))


def _worth_resuming(exc: Exception) -> bool:
    """A dropped connection or a 5xx: the session is alive, ask it where it stands. A 4xx is final (a
    404/410 means the session itself is gone)."""
    if isinstance(exc, HttpError):
        return int(exc.resp.status) >= 500
    return True
