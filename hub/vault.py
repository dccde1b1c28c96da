"""Secrets at rest: AES-256-GCM with the row's identity as associated data.

A ciphertext is ``v1.<key id>.<base64(nonce + ciphertext)>``. The associated data names the row and
field a secret belongs to, so a ciphertext copied into another row (or another field) fails to decrypt.
The first key encrypts; every key decrypts, which is what lets ``hub keys rotate`` run while serving.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.errors import HubError

_VERSION = "v1"


class VaultError(HubError):
    status = 500
    code = "vault_error"


def generate_key() -> str:
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode().rstrip("=")


def _decode_key(text: str) -> bytes:
    raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    if len(raw) != 32:
        raise ValueError("an encryption key must be 32 bytes, url-safe base64 encoded (see `hub keys generate`)")
    return raw


def _key_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:8]


class Vault:
    def __init__(self, keys: list[str] | tuple[str, ...]) -> None:
        if not keys:
            raise ValueError("the vault needs at least one key")
        decoded = [_decode_key(k) for k in keys]
        self._primary_id = _key_id(decoded[0])
        self._keys = {_key_id(raw): AESGCM(raw) for raw in decoded}

    @property
    def primary_key_id(self) -> str:
        return self._primary_id

    @staticmethod
    def associated_data(*identity: object) -> bytes:
        return "/".join(str(part) for part in identity).encode()

    def encrypt(self, plaintext: str, *identity: object) -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self._primary_id].encrypt(nonce, plaintext.encode(), self.associated_data(*identity))
        return f"{_VERSION}.{self._primary_id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *identity: object) -> str:
        try:
            version, key_id, body = token.split(".", 2)
            raw = base64.urlsafe_b64decode(body)
        except ValueError:
            raise VaultError("stored secret is malformed") from None
        if version != _VERSION or key_id not in self._keys:
            raise VaultError("stored secret was encrypted with a key this hub does not have")
        try:
            return self._keys[key_id].decrypt(raw[:12], raw[12:], self.associated_data(*identity)).decode()
        except InvalidTag:
            raise VaultError("stored secret does not belong to this row or was tampered with") from None

    def needs_rotation(self, token: str) -> bool:
        return token.split(".", 2)[1] != self._primary_id
