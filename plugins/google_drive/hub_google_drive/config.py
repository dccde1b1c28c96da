"""Where Google lives (or one override base URL such as the simulator's), the scope, the limits, and the
settings a tenant can change on its Google Drive connection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from hub import RateLimit

SLUG = "google_drive"
SCOPE = "https://www.googleapis.com/auth/drive.file"
"""Only the files and folders the hub creates (or a user opens with it): never the rest of the Drive."""
FOLDER_MIME = "application/vnd.google-apps.folder"
RATE_LIMITS = (RateLimit(requests=12_000, per_seconds=60, concurrency=8),)
"""Drive's default per-user quota is 12,000 queries a minute; eight in flight keeps one tenant's uploads from
crowding out everyone else's."""
MULTIPART_MAX = 5 * 1024 * 1024
"""Google's limit for a multipart (one request) upload; anything larger goes resumable."""
CHUNK = 256 * 1024
"""Resumable upload chunks are multiples of 256 KiB (the last one excepted)."""
DEFAULT_CHUNK_SIZE = 20 * CHUNK  # 5 MiB


@dataclass(frozen=True, kw_only=True)
class Hosts:
    authorize: str
    token: str
    revoke: str
    api_root: str
    """What ``client_options.api_endpoint`` gets: the Drive API's root, service path included."""
    chunk_size: int = DEFAULT_CHUNK_SIZE

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Hosts:
        """``GOOGLE_DRIVE_BASE_URL`` replaces accounts.google.com, oauth2.googleapis.com and www.googleapis.com
        with one server serving Google's paths (the simulator). ``GOOGLE_DRIVE_CHUNK_SIZE`` (bytes, a multiple
        of 256 KiB) sets the resumable upload chunk."""
        chunk = int(environ.get("GOOGLE_DRIVE_CHUNK_SIZE") or DEFAULT_CHUNK_SIZE)
        if chunk <= 0 or chunk % CHUNK:
            raise ValueError("GOOGLE_DRIVE_CHUNK_SIZE is a positive multiple of 262144 (256 KiB)")
        base = (environ.get("GOOGLE_DRIVE_BASE_URL") or "").rstrip("/")
        if base:
            return cls(authorize=f"{base}/o/oauth2/v2/auth", token=f"{base}/token", revoke=f"{base}/revoke",
                       api_root=f"{base}/drive/v3/", chunk_size=chunk)
        return cls(authorize="https://accounts.google.com/o/oauth2/v2/auth", token="https://oauth2.googleapis.com/token",
                   revoke="https://oauth2.googleapis.com/revoke", api_root="https://www.googleapis.com/drive/v3/",
                   chunk_size=chunk)


class DriveSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A connection's settings (``PATCH /v1/connections/google_drive`` with ``settings``)."""

    file_signed_envelopes: bool = False
    """File the signed PDF of every completed e-signature envelope (``esign.envelope.completed``, from any
    e-signature plugin) into its job's folder."""
    jobs_parent_folder_id: str | None = None
    """The Drive folder new job folders go in when ``create_job_folder`` names no parent (None: My Drive)."""
