"""Steps the DocuSign tests share: connect through DocuSign's consent, run actions, build documents."""

from __future__ import annotations

import base64
import uuid

from hub.connections import connection_context, get_connection
from hub.testing import connect_oauth
from hub_docusign.pdf import make_pdf


async def connect(client, tenant) -> dict:
    outcome = await connect_oauth(client, tenant, "docusign")
    assert outcome["status"] == ["connected"], outcome
    return (await client.get("/v1/connections/docusign", headers=tenant.headers)).json()


async def action(client, tenant, name: str, body: dict | None = None):
    return await client.post(f"/v1/connections/docusign/actions/{name}", json=body or {}, headers=tenant.headers)


async def ok(client, tenant, name: str, body: dict | None = None) -> dict:
    response = await action(client, tenant, name, body)
    assert response.status_code == 200, response.text
    return response.json()


def pdf_base64(text: str = "Contract C-42") -> str:
    return base64.b64encode(make_pdf([[text, "Owner: ____________"]], title=text)).decode()


def contract(document_id: str = "c-42", **overrides) -> dict:
    """A send_envelope input: one PDF, two signers in order, for contract ``document_id``."""
    return {"subject": "Please sign: kitchen remodel contract", "message": "Two signatures, owner first.",
            "document_type": "contract", "document_id": document_id, "job_id": "job-7", "sent_by": "user-3",
            "documents": [{"name": "Contract C-42", "file_extension": "pdf", "content_base64": pdf_base64()}],
            "signers": [{"email": "olive@example.com", "name": "Olive Owner", "routing_order": 1},
                        {"email": "carl@example.com", "name": "Carl Contractor", "routing_order": 2}],
            **overrides}


async def context(hub, tenant_id: uuid.UUID):
    async with hub.session(tenant_id) as session:
        return await connection_context(hub, session, await get_connection(session, tenant_id, "docusign"))


async def events(client, tenant, type: str) -> list[dict]:
    return (await client.get(f"/v1/events?type={type}", headers=tenant.headers)).json()


async def record(client, tenant, envelope_id: str) -> dict | None:
    items = (await client.get("/v1/records/docusign/envelope?limit=1000", headers=tenant.headers)).json()["items"]
    return next((r["data"] for r in items if r["external_id"] == envelope_id), None)
