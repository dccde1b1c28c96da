"""The DocuSign plugin's conformance adapter: how ``hub.testing.conformance`` starts the simulator, points the
plugin at it, connects through DocuSign's consent, and what a Connect message looks like; demo mode's
walk-through (send a contract, its signer signs, the signed PDF arrives); and ``deliver_connect``, which hands
the simulator's queued Connect messages to the app under test."""

from __future__ import annotations

import base64

import hub_docusign.plugin
from hub.testing.adapter import DemoPlace, DemoStep, ProviderAdapter
from hub_docusign.pdf import make_pdf
from hub_docusign.simulator import (
    ACCOUNT_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    HMAC_KEY,
    SECOND_HMAC_KEY,
    ConnectMessage,
    DocuSignSimulator,
    connect_path,
    sign,
)

__all__ = ["DocuSignAdapter", "deliver_connect", "environ"]


def environ(simulator: DocuSignSimulator, *, hmac_keys: tuple[str, ...] = (HMAC_KEY,)) -> dict[str, str]:
    """``config.environ`` pointing the plugin at ``simulator`` with its integration key and Connect keys."""
    return {"DOCUSIGN_BASE_URL": simulator.url, "DOCUSIGN_CLIENT_ID": CLIENT_ID,
            "DOCUSIGN_CLIENT_SECRET": CLIENT_SECRET, "DOCUSIGN_CONNECT_HMAC_KEYS": ",".join(hmac_keys)}


async def deliver_connect(client, simulator: DocuSignSimulator) -> list[tuple[ConnectMessage, int]]:
    """POST every queued Connect message to the app under test (``client``: the kit's test client), as
    DocuSign would post it to the hub's public URL; answers other than 200 queue DocuSign's retry."""
    delivered = []
    for message in simulator.take_connect():
        response = await client.post(connect_path(message), content=message.body, headers=message.headers)
        simulator.acknowledge(message, response.status_code)
        delivered.append((message, response.status_code))
    return delivered


class DocuSignAdapter(ProviderAdapter):
    provider = "docusign"
    plugin = ("docusign", hub_docusign.plugin)
    probe = ("list_templates", {})

    def simulator(self) -> DocuSignSimulator:
        return DocuSignSimulator()

    def demo_simulator(self) -> DocuSignSimulator:
        """Posting Connect messages itself, as DocuSign does: the demo hub hears every envelope move on."""
        return DocuSignSimulator(auto_connect=True)

    def environ(self, simulator: DocuSignSimulator) -> dict[str, str]:
        return environ(simulator)

    def wrong_client_environ(self, simulator: DocuSignSimulator) -> dict[str, str]:
        return self.environ(simulator) | {"DOCUSIGN_CLIENT_SECRET": "not-the-integration-secret"}

    def secrets(self, simulator: DocuSignSimulator) -> list[str]:
        with simulator.lock:
            issued = list(simulator.issued)
        return super().secrets(simulator) + [CLIENT_SECRET, HMAC_KEY, SECOND_HMAC_KEY] + issued

    def webhook(self, simulator: DocuSignSimulator, connection, *, secret: str = "good"):
        """A Connect ``envelope-sent`` message about an envelope sent in the connection's account."""
        with simulator.lock:
            envelope = simulator._create(simulator.account(connection["external_account_id"] or ACCOUNT_ID), {
                "emailSubject": "Conformance contract", "status": "sent",
                "documents": [{"documentId": "1", "name": "Contract", "fileExtension": "pdf",
                               "documentBase64": base64.b64encode(make_pdf([["Contract"]])).decode()}],
                "recipients": {"signers": [{"email": "owner@example.com", "name": "Olive Owner",
                                            "recipientId": "1", "routingOrder": "1"}]},
                "eventNotification": {"url": "http://127.0.0.1/v1/webhooks/docusign", "includeHMAC": "true",
                                      "requireAcknowledgment": "true", "events": ["envelope-sent"],
                                      "eventData": {"version": "restv2.1", "format": "json",
                                                    "includeData": ["recipients"]}},
            })
            message = next(m for m in simulator.take_connect() if m.envelope_id == envelope["envelopeId"])
        headers = {k.lower(): v for k, v in message.headers.items()}
        if secret != "good":
            headers["x-docusign-signature-1"] = sign("someone-elses-connect-key", message.body)
        return message.body, headers

    # -- demo mode ------------------------------------------------------------------------------------
    def demo_steps(self, simulator: DocuSignSimulator) -> list[DemoStep]:
        contract = make_pdf([["Contract C-1042: Oak St remodel", "", "Owner: ____________________"]],
                            title="Contract C-1042")
        envelope = {"subject": "Please sign: Oak St remodel contract", "document_type": "contract",
                    "document_id": "c-1042", "job_id": "job-oak",
                    "signers": [{"email": "olive@oakstreet.example", "name": "Olive Owner"}],
                    "documents": [{"name": "Contract C-1042",
                                   "content_base64": base64.b64encode(contract).decode()}]}
        this_contract = {"document_type": "contract", "document_id": "c-1042"}
        return [
            DemoStep("DocuSign: send a contract for signature (a one-page PDF, base64; or a hub file's file_id)",
                     "POST", "/v1/connections/docusign/actions/send_envelope", envelope,
                     events=("esign.envelope.sent", "esign.recipient.sent"),
                     data={"esign.envelope.sent": this_contract, "esign.recipient.sent": this_contract}),
            DemoStep("DocuSign: the owner signs it in DocuSign (Connect then tells the hub, which fetches the "
                     "signed PDF)", "POST", "sign", {"document_id": "c-1042"}, target="provider",
                     events=("esign.recipient.completed", "esign.envelope.completed"),
                     data={"esign.recipient.completed": this_contract,
                           "esign.envelope.completed": this_contract | {"file_path": "contract/c-1042/signed.pdf"}},
                     note="the signed PDF is now a hub file: GET /v1/files?prefix=contract/c-1042/ "
                          "(its bytes at /v1/files/FILE_ID/content)"),
        ]

    def demo_triggers(self):
        return {"sign": _sign}


def _sign(simulator: DocuSignSimulator, body: dict, place: DemoPlace) -> dict:
    """Every signer of the latest envelope awaiting signature (of the hub's ``document_id``, if given) opens
    and signs it, in routing order; the last signature completes it and Connect posts each step to the hub."""
    document_id = body.get("document_id")
    if document_id is not None and not isinstance(document_id, str):
        raise ValueError("document_id, if given, is the document_id the envelope was sent with (e.g. c-1042)")
    account_id = place.connection.get("external_account_id") or ACCOUNT_ID
    with simulator.lock:
        waiting = [env for env in simulator.account(account_id).envelopes.values()
                   if env.status in ("sent", "delivered")
                   and (document_id is None or {"name": "hub_document_id", "value": document_id} in env.custom_fields)]
        if not waiting:
            about = f" for document {document_id}" if document_id else ""
            raise LookupError(f"no envelope{about} is waiting for signatures (send one first)")
        envelope = waiting[-1]
        simulator.walk(envelope.envelope_id, "completed")
        return {"envelope_id": envelope.envelope_id, "status": envelope.status,
                "signed_by": [signer["name"] for signer in envelope.signers]}
