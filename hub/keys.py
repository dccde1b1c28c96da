"""``hub keys rotate``: re-encrypt every stored secret with the first key, in small transactions, so the
hub keeps serving (every configured key still decrypts while this runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from hub.db.models import Connection, OAuthState

if TYPE_CHECKING:
    from hub.runtime import Hub

# (model, fields): each field's ciphertext is bound to (tenant_id, row id, field name).
ENCRYPTED_FIELDS = (
    (Connection, ("access_token", "refresh_token", "credentials")),
    (OAuthState, ("code_verifier",)),
)
BATCH = 200


async def rotate_secrets(hub: Hub) -> int:
    """Returns how many secrets were re-encrypted."""
    rotated = 0
    for model, fields in ENCRYPTED_FIELDS:
        last_id = None
        while True:
            async with hub.session() as session:
                stmt = select(model).order_by(model.id).limit(BATCH).with_for_update()
                if last_id is not None:
                    stmt = stmt.where(model.id > last_id)
                rows = list((await session.scalars(stmt)).all())
                for row in rows:
                    for field in fields:
                        token = getattr(row, f"{field}_enc")
                        if token and hub.vault.needs_rotation(token):
                            plain = hub.vault.decrypt(token, row.tenant_id, row.id, field)
                            setattr(row, f"{field}_enc", hub.vault.encrypt(plain, row.tenant_id, row.id, field))
                            rotated += 1
            if len(rows) < BATCH:
                break
            last_id = rows[-1].id
    return rotated
