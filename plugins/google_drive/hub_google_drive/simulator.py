"""A local Google Drive: the Drive v3 API and Google's OAuth server over real HTTP on 127.0.0.1.

It follows Google's documented behaviour, strictly where the plugin depends on it:

- OAuth 2.0: ``/o/oauth2/v2/auth`` (the consent page; it approves at once, or refuses with
  ``decision=deny``; PKCE ``S256`` is required; a refresh token is issued only for ``access_type=offline``),
  ``/token`` (client authentication in the body or HTTP Basic; ``invalid_grant`` for a used code, a wrong
  PKCE verifier or a revoked refresh token; refresh responses carry no new refresh token) and ``/revoke``.
- Drive v3 under ``/drive/v3``: ``about``, ``files`` create/get/list (the ``q`` subset: ``'id' in parents``,
  ``trashed = false``, ``mimeType = '...'``, joined with ``and``)/update, ``files/{id}/permissions``,
  ``changes/startPageToken``, ``changes`` (page tokens; ``nextPageToken`` while more, then
  ``newStartPageToken``), ``changes/watch`` and ``channels/stop``. ``fields`` masks are applied.
- Uploads under ``/upload/drive/v3/files``: ``uploadType=multipart`` (metadata and media in one
  ``multipart/related`` body, at most 5 MB) and ``uploadType=resumable`` (a session URI in ``Location``;
  chunks ``PUT`` with ``Content-Range``, each a multiple of 256 KiB but the last; ``308 Resume Incomplete``
  with ``Range`` until the last; ``bytes */total`` asks how much arrived).
- ``drive.file``: the app sees only the files it created (``add_file(by_app=False)`` makes one it cannot see).
- Limits: 12,000 queries a minute per user (``requests_per_minute``), beyond which Drive answers 403
  ``userRateLimitExceeded``.
- Errors are Google's bodies: ``{"error": {"code", "message", "errors": [{"domain", "reason", "message"}],
  "status"}}``.
- Push notifications: every change to a file the app can see queues, for each live channel, the POST Drive
  would send (``X-Goog-Channel-ID``, ``X-Goog-Channel-Token``, ``X-Goog-Resource-ID``, ``X-Goog-Resource-URI``,
  ``X-Goog-Resource-State``, ``X-Goog-Message-Number``, ``X-Goog-Channel-Expiration``): a ``sync`` message when
  the channel opens, then ``change``. ``notifications()`` hands them over; tests post them to the hub.

The kit's planned faults answer in Google's shape: ``fail_next(403)`` is Drive's ``userRateLimitExceeded``,
``throttle_next()`` its 429 ``rateLimitExceeded``. Beyond them: ``interrupt_upload(after_chunks, keep)`` drops
the connection of a resumable upload's next chunk after keeping part of it, as a network failure mid-chunk
would.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
import urllib.request
from base64 import urlsafe_b64encode
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from hub.testing.simulator import Fault, Request, Response, Simulator, TokenStore

CLIENT_ID = "123456789012-hubsim.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-drive-sim-client-secret"
USER = {"kind": "drive#user", "displayName": "Pat Manager", "emailAddress": "pat@buildco.example",
        "permissionId": "04918263418297539516", "me": True}
SCOPE_FILE = "https://www.googleapis.com/auth/drive.file"
DRIVE_SCOPES = {SCOPE_FILE, "https://www.googleapis.com/auth/drive"}
FOLDER = "application/vnd.google-apps.folder"
MULTIPART_MAX = 5 * 1024 * 1024
CHUNK = 256 * 1024
CHANNEL_MAX_SECONDS = 7 * 24 * 3600
ACCESS_TTL = 3599
_DROP = "x-simulator-drop"

_REASONS = {400: ("badRequest", "INVALID_ARGUMENT"), 401: ("authError", "UNAUTHENTICATED"),
            403: ("forbidden", "PERMISSION_DENIED"), 404: ("notFound", "NOT_FOUND"),
            429: ("rateLimitExceeded", "RESOURCE_EXHAUSTED"), 500: ("backendError", "INTERNAL"),
            503: ("backendError", "UNAVAILABLE")}


def google_error(status: int, message: str, reason: str | None = None, domain: str = "global",
                 headers: dict[str, str] | None = None) -> Response:
    default_reason, state = _REASONS.get(status, ("backendError", "UNKNOWN"))
    body = {"error": {"code": status, "message": message,
                      "errors": [{"message": message, "domain": domain, "reason": reason or default_reason}],
                      "status": state}}
    return Response.json(body, status, headers)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _id() -> str:
    return "1" + secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")[:32]


# -- fields masks ------------------------------------------------------------------------------------------
def _parse_mask(text: str) -> dict[str, Any]:
    """``a,b,files(c,d(e))`` -> {"a": {}, "b": {}, "files": {"c": {}, "d": {"e": {}}}}."""
    mask: dict[str, Any] = {}
    stack, name = [mask], ""
    for char in text + ",":
        if char == "(":
            child = stack[-1].setdefault(name.strip(), {})
            stack.append(child)
            name = ""
        elif char in ",)":
            if name.strip():
                stack[-1].setdefault(name.strip(), {})
            name = ""
            if char == ")":
                stack.pop()
        else:
            name += char
    return mask


def _apply_mask(value: Any, mask: dict[str, Any]) -> Any:
    if not mask or "*" in mask:
        return value
    if isinstance(value, list):
        return [_apply_mask(v, mask) for v in value]
    if not isinstance(value, dict):
        return value
    return {k: _apply_mask(value[k], sub) for k, sub in mask.items() if k in value}


@dataclass
class DriveFile:
    id: str
    name: str
    mime_type: str
    parents: list[str]
    by_app: bool = True
    content: bytes = b""
    app_properties: dict[str, str] = field(default_factory=dict)
    version: int = 1
    trashed: bool = False
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)
    permissions: list[dict[str, Any]] = field(default_factory=list)

    def resource(self) -> dict[str, Any]:
        folder = self.mime_type == FOLDER
        out: dict[str, Any] = {
            "kind": "drive#file", "id": self.id, "name": self.name, "mimeType": self.mime_type,
            "parents": list(self.parents), "version": str(self.version), "trashed": self.trashed,
            "createdTime": self.created, "modifiedTime": self.modified, "appProperties": dict(self.app_properties),
            "webViewLink": (f"https://drive.google.com/drive/folders/{self.id}" if folder
                            else f"https://drive.google.com/file/d/{self.id}/view?usp=drivesdk"),
        }
        if not folder:
            out |= {"size": str(len(self.content)), "md5Checksum": hashlib.md5(self.content).hexdigest()}
        return out


@dataclass
class UploadSession:
    id: str
    metadata: dict[str, Any]
    mime_type: str
    total: int | None
    file_id: str | None
    """None: a new file; else a new version of this one."""
    received: bytearray = field(default_factory=bytearray)
    chunks: int = 0
    done: str | None = None


@dataclass
class Channel:
    id: str
    resource_id: str
    address: str
    token: str | None
    expiration_ms: int
    page_token: str
    messages: int = 0
    stopped: bool = False


class GoogleDriveSimulator(Simulator):
    def __init__(self, *, port: int = 0, deliver: bool = False) -> None:
        """``deliver``: POST each push notification to its channel's address as Drive does (only to a hub on
        127.0.0.1 or localhost: demo mode); by default they wait in ``notifications()`` for a test."""
        super().__init__(port=port)
        self.deliver = deliver
        self.tokens = TokenStore()
        self.client_id, self.client_secret = CLIENT_ID, CLIENT_SECRET
        self.codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, str] = {}
        """refresh token -> the scope it grants (one user: ``USER``)."""
        self.issued: list[str] = []
        self.files: dict[str, DriveFile] = {}
        self.uploads: dict[str, UploadSession] = {}
        self.changes: list[tuple[str, str]] = []
        """(file id, time), one per change; change n has page token str(n + 1)."""
        self.channels: dict[str, Channel] = {}
        self.outbox: list[tuple[str, dict[str, str], bytes]] = []
        self._interrupt: tuple[int, int] | None = None
        self.requests_per_minute = 12_000
        self._recent: deque[float] = deque()
        self.channel_max_seconds = CHANNEL_MAX_SECONDS
        """Drive caps a changes channel at a week; lower it to see the hub renew channels."""

    # -- helpers for tests -------------------------------------------------------------------------------
    def add_file(self, name: str, content: bytes = b"", *, mime_type: str = "application/pdf",
                 parents: list[str] | None = None, by_app: bool = True) -> DriveFile:
        """A file in the user's Drive; ``by_app=False``: one another app made, which ``drive.file`` hides."""
        with self.lock:
            f = DriveFile(id=_id(), name=name, mime_type=mime_type, parents=parents or ["root"], by_app=by_app,
                          content=content)
            self.files[f.id] = f
            self._changed(f)
        return f

    def edit_file(self, file_id: str, content: bytes | None = None, name: str | None = None) -> DriveFile:
        """The user changes a file in Drive's own UI."""
        with self.lock:
            f = self.files[file_id]
            if content is not None:
                f.content = content
            if name is not None:
                f.name = name
            f.version += 1
            f.modified = _now()
            self._changed(f)
        return f

    def children(self, folder_id: str) -> list[DriveFile]:
        with self.lock:
            return [f for f in self.files.values() if folder_id in f.parents and not f.trashed]

    def folders(self) -> list[DriveFile]:
        with self.lock:
            return [f for f in self.files.values() if f.mime_type == FOLDER]

    def interrupt_upload(self, *, after_chunks: int, keep: int = 0) -> None:
        """The next resumable upload's chunk number ``after_chunks + 1`` loses its connection once the
        first ``keep`` bytes of it (a multiple of 256 KiB) have been stored."""
        if keep % CHUNK:
            raise ValueError("Drive keeps whole 256 KiB blocks")
        with self.lock:
            self._interrupt = (after_chunks, keep)

    def notifications(self) -> list[tuple[str, dict[str, str], bytes]]:
        """The push notifications Drive would have POSTed since the last call: (address, headers, body)."""
        with self.lock:
            out, self.outbox = self.outbox, []
        return out

    def live_channels(self) -> list[Channel]:
        now_ms = time.time() * 1000
        with self.lock:
            return [c for c in self.channels.values() if not c.stopped and c.expiration_ms > now_ms]

    # -- the kit's hooks ---------------------------------------------------------------------------------
    def fault_response(self, request: Request, fault: Fault) -> Response:
        status = fault.status or 500
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if request.path.startswith(("/token", "/revoke")):
            return Response.json({"error": "internal_failure"}, status, headers)
        # Drive's "slow down" is 429 rateLimitExceeded or 403 userRateLimitExceeded.
        reason = {429: "rateLimitExceeded", 403: "userRateLimitExceeded"}.get(status)
        domain = "usageLimits" if reason else "global"
        message = {429: "Rate Limit Exceeded", 403: "User Rate Limit Exceeded"}.get(status, "Backend Error")
        return google_error(status, message, reason, domain, headers)

    def _answer(self, request: Request) -> Response | None:
        response = super()._answer(request)
        if response is not None and _DROP in response.headers:
            return None  # the connection goes down without an answer
        return response

    # -- routing -----------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == "/o/oauth2/v2/auth" and method == "GET":
            return self._authorize(request.query)
        if path == "/token" and method == "POST":
            return self._token(request)
        if path == "/revoke" and method == "POST":
            return self._revoke(request)
        if not path.startswith(("/drive/v3/", "/upload/drive/v3/")):
            return google_error(404, "Not Found")
        scope = self._scope(request)
        if scope is None:
            return google_error(401, "Request had invalid authentication credentials. Expected OAuth 2 access "
                                     "token, login cookie or other valid authentication credential.",
                                "authError", headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
        if not DRIVE_SCOPES & set(scope.split()):
            return google_error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
        if not self._admit():
            return google_error(403, "User Rate Limit Exceeded", "userRateLimitExceeded", "usageLimits")
        with self.lock:
            try:
                response = self._drive(request, method, path)
            except _Error as exc:
                return exc.response
        mask = request.query.get("fields")
        if mask and response.status == 200 and response.body:
            response.body = json.dumps(_apply_mask(json.loads(response.body), _parse_mask(mask))).encode()
        return response

    def _admit(self) -> bool:
        """Drive's per-user quota: ``requests_per_minute`` queries in any 60 seconds (one user here)."""
        now = time.monotonic()
        with self.lock:
            while self._recent and self._recent[0] <= now - 60:
                self._recent.popleft()
            if len(self._recent) >= self.requests_per_minute:
                return False
            self._recent.append(now)
            return True

    def _scope(self, request: Request) -> str | None:
        token = request.bearer
        if self.tokens.owner(token) is None:
            return None
        return self.tokens.get(token or "")[0].partition("|")[2]

    # -- OAuth -------------------------------------------------------------------------------------------
    def _authorize(self, query: dict[str, str]) -> Response:
        if query.get("client_id") != self.client_id:
            return Response(401, b"Error 401: invalid_client. The OAuth client was not found.",
                            {"Content-Type": "text/html"})
        redirect = query.get("redirect_uri", "")
        if query.get("response_type") != "code" or not redirect:
            return Response(400, b"Error 400: invalid_request", {"Content-Type": "text/html"})
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return Response(400, b"Error 400: invalid_request. PKCE with S256 is required for this client.",
                            {"Content-Type": "text/html"})
        state = query.get("state", "")
        if query.get("decision") == "deny":
            params = {"error": "access_denied", "state": state}
        else:
            code = "4/0A" + secrets.token_urlsafe(32)
            with self.lock:
                self.codes[code] = {"redirect_uri": redirect, "challenge": query["code_challenge"],
                                    "scope": query.get("scope", ""),
                                    "offline": query.get("access_type") == "offline"}
            params = {"code": code, "state": state, "scope": query.get("scope", "")}
        return Response.redirect(f"{redirect}?{urlencode(params)}")

    def _client(self, request: Request, form: dict[str, str]) -> bool:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            import base64

            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        return client_id == self.client_id and secret == self.client_secret

    def _token(self, request: Request) -> Response:
        form = request.form()
        if not self._client(request, form):
            return Response.json({"error": "invalid_client", "error_description": "Unauthorized"}, 401)
        grant = form.get("grant_type")
        with self.lock:
            if grant == "authorization_code":
                code = self.codes.pop(form.get("code", ""), None)
                if code is None or code["redirect_uri"] != form.get("redirect_uri"):
                    return Response.json({"error": "invalid_grant", "error_description": "Bad Request"}, 400)
                verifier = form.get("code_verifier", "")
                challenge = urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
                if challenge != code["challenge"]:
                    return Response.json({"error": "invalid_grant",
                                          "error_description": "Invalid code verifier."}, 400)
                scope, refresh = code["scope"], None
                if code["offline"]:
                    refresh = "1//0g" + secrets.token_urlsafe(40)
                    self.refresh_tokens[refresh] = scope
                    self.issued.append(refresh)
            elif grant == "refresh_token":
                scope = self.refresh_tokens.get(form.get("refresh_token", ""))
                if scope is None:
                    return Response.json({"error": "invalid_grant",
                                          "error_description": "Token has been expired or revoked."}, 400)
                refresh = None
            else:
                return Response.json({"error": "unsupported_grant_type",
                                      "error_description": "Invalid grant_type"}, 400)
            access = "ya29.a0" + secrets.token_urlsafe(48)
            self.issued.append(access)
        self.tokens.issue(access, f"{USER['permissionId']}|{scope}", ACCESS_TTL)
        body = {"access_token": access, "expires_in": ACCESS_TTL, "scope": scope, "token_type": "Bearer"}
        if refresh:
            body["refresh_token"] = refresh
        return Response.json(body)

    def _revoke(self, request: Request) -> Response:
        token = request.form().get("token") or request.query.get("token", "")
        with self.lock:
            known = token in self.refresh_tokens or token in self.tokens
            if not known:
                return Response.json({"error": "invalid_token", "error_description": "Token expired or revoked"}, 400)
            self.refresh_tokens.clear()  # revoking either token ends the whole grant (one user here)
        self.tokens.expire_all()
        return Response.json({})

    # -- Drive ---------------------------------------------------------------------------------------------
    def _drive(self, request: Request, method: str, path: str) -> Response:
        q = request.query
        if path.startswith("/upload/drive/v3/files"):
            return self._upload(request, method, path.removeprefix("/upload/drive/v3/files").strip("/") or None)
        rest = path.removeprefix("/drive/v3/")
        if rest == "about" and method == "GET":
            return Response.json({"kind": "drive#about", "user": USER})
        if rest == "files" and method == "POST":
            meta = self._json(request)
            return Response.json(self._create(meta, meta.get("mimeType") or "application/octet-stream", b"").resource())
        if rest == "files" and method == "GET":
            return self._list(q)
        if rest == "changes/startPageToken" and method == "GET":
            return Response.json({"kind": "drive#startPageToken", "startPageToken": str(len(self.changes) + 1)})
        if rest == "changes" and method == "GET":
            return self._changes(q)
        if rest == "changes/watch" and method == "POST":
            return self._watch(request, q)
        if rest == "channels/stop" and method == "POST":
            return self._stop(request)
        match = re.fullmatch(r"files/([^/]+)(/permissions)?", rest)
        if match:
            f = self._visible(match.group(1))
            if match.group(2) and method == "POST":
                return self._permission(f, self._json(request), q)
            if not match.group(2) and method == "GET":
                return Response.json(f.resource())
            if not match.group(2) and method == "PATCH":
                return Response.json(self._update(f, self._json(request), None, None).resource())
        return google_error(404, f"Method not found: {method} {path}", "notFound")

    def _json(self, request: Request) -> dict[str, Any]:
        try:
            body = request.json() if request.body else {}
        except ValueError:
            raise _Error(google_error(400, "Invalid JSON payload received.", "parseError")) from None
        if not isinstance(body, dict):
            raise _Error(google_error(400, "Invalid JSON payload received.", "parseError"))
        return body

    def _visible(self, file_id: str) -> DriveFile:
        f = self.files.get(file_id)
        if f is None or not f.by_app:  # drive.file: what the app did not create does not exist for it
            raise _Error(google_error(404, f"File not found: {file_id}.", "notFound"))
        return f

    def _create(self, meta: dict[str, Any], mime_type: str, content: bytes) -> DriveFile:
        if not isinstance(meta.get("name", ""), str):
            raise _Error(google_error(400, "Invalid value for name", "invalid"))
        parents = meta.get("parents") or ["root"]
        if not isinstance(parents, list) or len(parents) != 1:
            raise _Error(google_error(403, "Increasing the number of parents is not allowed",
                                      "cannotAddParent"))
        if parents[0] != "root":
            parent = self._visible(parents[0])
            if parent.mime_type != FOLDER:
                raise _Error(google_error(400, "The specified parent is not a folder.", "invalidParent"))
        f = DriveFile(id=_id(), name=meta.get("name") or "Untitled", mime_type=meta.get("mimeType") or mime_type,
                      parents=parents, content=content, app_properties=dict(meta.get("appProperties") or {}))
        self.files[f.id] = f
        self._changed(f)
        return f

    def _update(self, f: DriveFile, meta: dict[str, Any], mime_type: str | None, content: bytes | None) -> DriveFile:
        if "name" in meta:
            f.name = meta["name"]
        if meta.get("appProperties"):
            f.app_properties.update(meta["appProperties"])
        if content is not None:
            f.content = content
            f.mime_type = meta.get("mimeType") or mime_type or f.mime_type
        f.version += 1
        f.modified = _now()
        self._changed(f)
        return f

    def _list(self, q: dict[str, str]) -> Response:
        files = [f for f in self.files.values() if f.by_app]
        query = q.get("q", "")
        for key, value in re.findall(r"appProperties has \{ key='([^']*)' and value='([^']*)' \}", query):
            files = [f for f in files if f.app_properties.get(key) == value]
        query = re.sub(r"appProperties has \{ key='[^']*' and value='[^']*' \}", "", query)
        for clause in filter(None, (c.strip() for c in re.split(r"\band\b", query))):
            if m := re.fullmatch(r"'([^']+)' in parents", clause):
                files = [f for f in files if m.group(1) in f.parents]
            elif m := re.fullmatch(r"trashed\s*=\s*(true|false)", clause):
                files = [f for f in files if f.trashed == (m.group(1) == "true")]
            elif m := re.fullmatch(r"mimeType\s*=\s*'([^']+)'", clause):
                files = [f for f in files if f.mime_type == m.group(1)]
            else:
                return google_error(400, "Invalid Value", "invalid")
        order = q.get("orderBy", "")
        files.sort(key=lambda f: ((f.mime_type != FOLDER) if order.startswith("folder") else 0, f.name, f.id))
        return self._page("files", [f.resource() for f in files], q, default_size=100)

    def _page(self, key: str, items: list[Any], q: dict[str, str], default_size: int) -> Response:
        try:
            size = int(q.get("pageSize", default_size))
            start = int(q.get("pageToken") or 0)
        except ValueError:
            return google_error(400, "Invalid Value", "invalid")
        if not 1 <= size <= 1000:
            return google_error(400, f"Invalid value '{size}'. Values must be within the range: [1, 1000]",
                                "invalid")
        body: dict[str, Any] = {"kind": "drive#fileList", "incompleteSearch": False, key: items[start:start + size]}
        if start + size < len(items):
            body["nextPageToken"] = str(start + size)
        return Response.json(body)

    def _permission(self, f: DriveFile, body: dict[str, Any], q: dict[str, str]) -> Response:
        role, kind = body.get("role"), body.get("type")
        if role not in ("owner", "organizer", "fileOrganizer", "writer", "commenter", "reader"):
            return google_error(400, "The permission role field is required.", "invalid")
        if kind not in ("user", "group", "domain", "anyone"):
            return google_error(400, "The permission type field is required.", "invalid")
        email = body.get("emailAddress")
        if kind in ("user", "group") and (not isinstance(email, str) or "@" not in email):
            return google_error(400, "The permission email address field is required.", "invalid")
        permission = {"kind": "drive#permission", "id": str(abs(hash(email)) % 10**20), "type": kind, "role": role,
                      "emailAddress": email, "notified": q.get("sendNotificationEmail", "true") != "false"}
        f.permissions = [p for p in f.permissions if p["emailAddress"] != email] + [permission]
        f.version += 1
        self._changed(f)
        return Response.json(permission)

    # -- uploads -------------------------------------------------------------------------------------------
    def _upload(self, request: Request, method: str, file_id: str | None) -> Response:
        q = request.query
        kind = q.get("uploadType")
        if method == "PUT" and "upload_id" in q:
            return self._chunk(request, q["upload_id"])
        if (method, file_id is None) not in (("POST", True), ("PATCH", False)):
            return google_error(404, "Not Found")
        target = self._visible(file_id) if file_id else None
        if kind == "multipart":
            meta, mime_type, content = self._multipart(request)
            if len(content) > MULTIPART_MAX:
                return google_error(413, "Request Too Large: multipart uploads are limited to 5 MB; use "
                                         "uploadType=resumable.", "uploadTooLarge")
            f = self._update(target, meta, mime_type, content) if target else self._create(meta, mime_type, content)
            return Response.json(f.resource())
        if kind == "resumable":
            meta = self._json(request)
            total = request.headers.get("x-upload-content-length")
            session = UploadSession(id=secrets.token_urlsafe(24), metadata=meta,
                                    mime_type=request.headers.get("x-upload-content-type", "application/octet-stream"),
                                    total=int(total) if total and total.isdigit() else None, file_id=file_id)
            self.uploads[session.id] = session
            location = f"{self.url}/upload/drive/v3/files{'/' + file_id if file_id else ''}?" + urlencode(
                {"uploadType": "resumable", "upload_id": session.id})
            return Response(200, b"", {"Location": location, "X-GUploader-UploadID": session.id})
        return google_error(400, "Invalid upload type", "invalid")

    def _multipart(self, request: Request) -> tuple[dict[str, Any], str, bytes]:
        match = re.search(r'boundary="?([^";]+)"?', request.headers.get("content-type", ""))
        if not match or "multipart/related" not in request.headers.get("content-type", ""):
            raise _Error(google_error(400, "Bad content type. Please use multipart/related.", "badContent"))
        delimiter = b"--" + match.group(1).encode()
        parts = []
        for raw in request.body.split(delimiter)[1:]:
            if raw.startswith(b"--"):
                break
            raw = raw.removeprefix(b"\r\n") if raw.startswith(b"\r\n") else raw.removeprefix(b"\n")
            ends = [(raw.find(sep), sep) for sep in (b"\r\n\r\n", b"\n\n") if sep in raw]
            if not ends:
                raise _Error(google_error(400, "Malformed multipart body.", "badContent"))
            at, sep = min(ends)
            head, payload = raw[:at], raw[at + len(sep):]
            payload = payload.removesuffix(b"\r\n") if payload.endswith(b"\r\n") else payload.removesuffix(b"\n")
            headers = dict(line.split(":", 1) for line in head.decode().splitlines() if ":" in line)
            parts.append(({k.strip().lower(): v.strip() for k, v in headers.items()}, payload))
        if len(parts) != 2:
            raise _Error(google_error(400, "Multipart body must have exactly two parts: metadata and media.",
                                      "badContent"))
        try:
            meta = json.loads(parts[0][1] or b"{}")
        except ValueError:
            raise _Error(google_error(400, "Invalid JSON payload received.", "parseError")) from None
        return meta, parts[1][0].get("content-type", "application/octet-stream"), parts[1][1]

    def _chunk(self, request: Request, upload_id: str) -> Response:
        session = self.uploads.get(upload_id)
        if session is None:
            return google_error(404, "No such upload session.", "notFound")
        if session.done is not None:
            return Response.json(self.files[session.done].resource())
        header = request.headers.get("content-range", "")
        if m := re.fullmatch(r"bytes \*/(\d+|\*)", header):
            if m.group(1) != "*" and session.total is not None and int(m.group(1)) != session.total:
                return google_error(400, "Failed to parse Content-Range header.", "badContent")
            return self._incomplete(session)
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", header)
        if not m:
            return google_error(400, "Failed to parse Content-Range header.", "badContent")
        first, last = int(m.group(1)), int(m.group(2))
        total = None if m.group(3) == "*" else int(m.group(3))
        data = request.body
        if last - first + 1 != len(data) or first != len(session.received):
            return google_error(400, f"Invalid request. The range {first}-{last} does not continue at byte "
                                     f"{len(session.received)}.", "badContent")
        final = total is not None and last + 1 == total
        if not final and len(data) % CHUNK:
            return google_error(400, "Invalid request. Chunks must be a multiple of 256 KiB (262144 bytes) "
                                     "except the last.", "badContent")
        if self._interrupt is not None and session.chunks == self._interrupt[0]:
            keep = self._interrupt[1]
            self._interrupt = None
            session.received += data[:keep]
            return Response(499, b"", {_DROP: "1"})
        session.received += data
        session.chunks += 1
        if total is not None:
            session.total = total
        if not final:
            return self._incomplete(session)
        content = bytes(session.received)
        if session.file_id:
            f = self._update(self.files[session.file_id], session.metadata, session.mime_type, content)
        else:
            f = self._create(session.metadata, session.mime_type, content)
        session.done = f.id
        return Response.json(f.resource())

    def _incomplete(self, session: UploadSession) -> Response:
        headers = {"X-GUploader-UploadID": session.id}
        if session.received:
            headers["Range"] = f"bytes=0-{len(session.received) - 1}"
        return Response(308, b"", headers)

    # -- changes and channels ------------------------------------------------------------------------------
    def _changed(self, f: DriveFile) -> None:
        self.changes.append((f.id, _now()))
        if f.by_app:
            for channel in self.channels.values():
                self._notify(channel, "change")

    def _notify(self, channel: Channel, state: str) -> None:
        if channel.stopped or channel.expiration_ms <= time.time() * 1000:
            return
        channel.messages += 1
        headers = {
            "X-Goog-Channel-ID": channel.id, "X-Goog-Message-Number": str(channel.messages),
            "X-Goog-Resource-ID": channel.resource_id, "X-Goog-Resource-State": state,
            "X-Goog-Resource-URI": f"{self.url}/drive/v3/changes?alt=json&pageToken={channel.page_token}",
            "X-Goog-Channel-Expiration": datetime.fromtimestamp(channel.expiration_ms / 1000, UTC)
            .strftime("%a, %d %b %Y %H:%M:%S GMT"),
        }
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token
        if self.deliver and urlsplit(channel.address).hostname in ("127.0.0.1", "localhost"):
            threading.Thread(target=_post, args=(channel.address, headers), daemon=True).start()
        else:
            self.outbox.append((channel.address, headers, b""))

    def _changes(self, q: dict[str, str]) -> Response:
        token = q.get("pageToken", "")
        if not token.isdigit() or not 1 <= int(token) <= len(self.changes) + 1:
            return google_error(400, f"Invalid Value: pageToken {token!r}", "invalid")
        size = int(q.get("pageSize", 100))
        start = int(token) - 1
        window = self.changes[start:start + size]
        out = []
        for file_id, at in window:
            f = self.files[file_id]
            if not f.by_app:
                continue
            out.append({"kind": "drive#change", "changeType": "file", "type": "file", "time": at,
                        "fileId": f.id, "removed": False, "file": f.resource()})
        body: dict[str, Any] = {"kind": "drive#changeList", "changes": out}
        if start + size < len(self.changes):
            body["nextPageToken"] = str(start + size + 1)
        else:
            body["newStartPageToken"] = str(len(self.changes) + 1)
        return Response.json(body)

    def _watch(self, request: Request, q: dict[str, str]) -> Response:
        token = q.get("pageToken", "")
        if not token.isdigit():
            return google_error(400, "Required parameter: pageToken", "required")
        body = self._json(request)
        if body.get("type") not in ("web_hook", "webhook") or not body.get("address") or not body.get("id"):
            return google_error(400, "Invalid channel: id, type web_hook and address are required.", "invalid")
        if body["id"] in self.channels:
            return google_error(400, f"Channel id {body['id']} not unique", "channelIdNotUnique")
        now_ms = int(time.time() * 1000)
        longest = now_ms + self.channel_max_seconds * 1000
        asked = int(body.get("expiration") or longest)
        channel = Channel(id=body["id"], resource_id=secrets.token_urlsafe(20), address=body["address"],
                          token=body.get("token"), expiration_ms=min(asked, longest),
                          page_token=token)
        self.channels[channel.id] = channel
        self._notify(channel, "sync")
        return Response.json({"kind": "api#channel", "id": channel.id, "resourceId": channel.resource_id,
                              "resourceUri": f"{self.url}/drive/v3/changes?alt=json&pageToken={token}",
                              "expiration": str(channel.expiration_ms)})

    def _stop(self, request: Request) -> Response:
        body = self._json(request)
        channel = self.channels.get(body.get("id", ""))
        if channel is None or channel.resource_id != body.get("resourceId"):
            return google_error(404, f"Channel '{body.get('id')}' not found for project", "notFound")
        channel.stopped = True
        return Response(204)


def _post(address: str, headers: dict[str, str]) -> None:
    request = urllib.request.Request(address, data=b"", headers=headers, method="POST")
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except OSError:  # Drive retries with backoff; a demo hub that is not listening just misses it
        pass


class _Error(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response

