"""Secrets at rest: bound to their row and field, and rotatable to a new key while the hub serves."""

from __future__ import annotations

import base64
import os
import stat

import pytest
from sqlalchemy import select

from hub.config import Settings
from hub.db.models import Connection
from hub.keys import rotate_secrets
from hub.runtime import resolve_vault
from hub.vault import Vault, VaultError, generate_key
from tests.conftest import make_hub
from tests.flows import connect


def test_round_trip_and_binding_to_identity():
    vault = Vault([generate_key()])
    token = vault.encrypt("s3cret", "tenant-a", "conn-1", "access_token")
    assert "s3cret" not in token
    assert vault.decrypt(token, "tenant-a", "conn-1", "access_token") == "s3cret"
    for identity in [("tenant-b", "conn-1", "access_token"), ("tenant-a", "conn-2", "access_token"),
                     ("tenant-a", "conn-1", "refresh_token")]:
        with pytest.raises(VaultError):
            vault.decrypt(token, *identity)


def test_tampered_ciphertext_and_unknown_key_are_refused():
    vault = Vault([generate_key()])
    token = vault.encrypt("s3cret", "t", "c", "f")
    version, key_id, body = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 1  # one bit of the authentication tag
    flipped = f"{version}.{key_id}.{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(VaultError):
        vault.decrypt(flipped, "t", "c", "f")
    with pytest.raises(VaultError, match="key this hub does not have"):
        Vault([generate_key()]).decrypt(token, "t", "c", "f")


def test_bad_key_material_is_rejected():
    with pytest.raises(ValueError, match="32 bytes"):
        Vault(["dG9vLXNob3J0"])


def test_generated_key_file_is_private_and_stable(tmp_path):
    settings = Settings(home=tmp_path)
    first = resolve_vault(settings)
    assert stat.S_IMODE(os.stat(tmp_path / "encryption.key").st_mode) == 0o600
    token = first.encrypt("x", "a")
    assert resolve_vault(settings).decrypt(token, "a") == "x"


async def test_ciphertext_copied_to_another_connection_does_not_decrypt(client, hub, tenant, provider):
    from tests.conftest import new_tenant

    other = await new_tenant(client, "Other Co")
    await connect(client, tenant)
    await connect(client, other)
    async with hub.session() as session:
        a, b = (await session.scalars(select(Connection).order_by(Connection.created_at))).all()
        b.access_token_enc = a.access_token_enc  # an attacker with database access swaps a token in
    async with hub.session() as session:
        b = await session.get(Connection, b.id)
        with pytest.raises(VaultError):
            hub.vault.decrypt(b.access_token_enc, b.tenant_id, b.id, "access_token")
        with pytest.raises(VaultError):  # nor in another field of the same row
            hub.vault.decrypt(a.access_token_enc, a.tenant_id, a.id, "refresh_token")


async def test_keys_rotate_leaves_every_secret_readable_under_the_new_key_only(client, hub, tenant, settings):
    await connect(client, tenant)
    put = await client.put("/v1/connections/testkeys", json={"credentials": {"api_key": "tk_live_valid_key_123456"}},
                           headers=tenant.headers)
    assert put.status_code == 200, put.text
    old_key, new_key = settings.encryption_keys[0], generate_key()
    rotating = make_hub(Settings(**{**_fields(settings), "encryption_keys": (new_key, old_key)}))
    try:
        assert await rotate_secrets(rotating) == 3  # access + refresh token, API credentials
        assert await rotate_secrets(rotating) == 0  # idempotent
    finally:
        await rotating.aclose()

    new_only = Vault([new_key])
    old_only = Vault([old_key])
    async with hub.session() as session:
        rows = (await session.scalars(select(Connection))).all()
    secrets = [(row, field) for row in rows for field in ("access_token", "refresh_token", "credentials")
               if getattr(row, f"{field}_enc")]
    assert len(secrets) == 3
    for row, field in secrets:
        assert new_only.decrypt(getattr(row, f"{field}_enc"), row.tenant_id, row.id, field)
        with pytest.raises(VaultError):
            old_only.decrypt(getattr(row, f"{field}_enc"), row.tenant_id, row.id, field)


def _fields(settings: Settings) -> dict:
    return {name: getattr(settings, name) for name in settings.__struct_fields__}
