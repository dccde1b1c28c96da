"""Files the hub keeps under HUB_HOME: the generated encryption key and admin token (both mode 0600)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def ensure_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def read_or_create_secret(path: Path, make: callable) -> tuple[str, bool]:
    """Return the secret stored at ``path``, creating it with mode 0600 first if missing.

    The file is created with O_EXCL so two processes starting together agree on one value.
    """
    ensure_home(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip(), False
    value = make()
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value, True


def new_token() -> str:
    return secrets.token_urlsafe(32)
