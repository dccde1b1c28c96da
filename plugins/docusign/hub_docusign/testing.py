"""The DocuSign plugin's conformance adapter: how ``hub.testing.conformance`` starts the simulator, points the
plugin at it, connects through DocuSign's consent, and what a Connect message looks like; and
``deliver_connect``, which hands the simulator's queued Connect messages to the app under test."""

from __future__ import annotations

import hub_docusign.plugin
from hub.testing.adapter import ProviderAdapter
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
        """Posting Connect messages itself, as DocuSign does: a hub started beside it (demo mode) hears every
        envelope move on. (The suite's own webhook check takes its message before the sender can.)"""
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
        import base64

        from hub_docusign.pdf import make_pdf

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
