"""Demo mode's "sign" trigger: the owner signs the envelope the walk-through sent (found by the hub's document
id, not by an id the newcomer never saw), and a body it cannot use is refused before anything is signed."""

from __future__ import annotations

import base64

import pytest

from hub.testing.adapter import DemoPlace
from hub_docusign.pdf import make_pdf
from hub_docusign.simulator import ACCOUNT_ID, DocuSignSimulator
from hub_docusign.testing import DocuSignAdapter

PLACE = DemoPlace("http://127.0.0.1:9", {"external_account_id": ACCOUNT_ID})


def _sent(ds: DocuSignSimulator, document_id: str) -> str:
    with ds.lock:
        envelope = ds._create(ds.account(ACCOUNT_ID), {
            "emailSubject": f"Sign {document_id}", "status": "sent",
            "documents": [{"documentId": "1", "name": "Contract", "fileExtension": "pdf",
                           "documentBase64": base64.b64encode(make_pdf([["Contract"]])).decode()}],
            "recipients": {"signers": [{"email": "a@example.com", "name": "Ann", "recipientId": "1"},
                                       {"email": "b@example.com", "name": "Bo", "recipientId": "2",
                                        "routingOrder": "2"}]},
            "customFields": {"textCustomFields": [{"name": "hub_document_id", "value": document_id}]}})
    return envelope["envelopeId"]


def test_sign_completes_the_envelope_of_the_named_document_and_no_other():
    sign = DocuSignAdapter().demo_triggers()["sign"]
    with DocuSignSimulator() as ds:
        named, other = _sent(ds, "c-1042"), _sent(ds, "c-7")
        answer = sign(ds, {"document_id": "c-1042"}, PLACE)
        assert answer == {"envelope_id": named, "status": "completed", "signed_by": ["Ann", "Bo"]}
        assert ds.envelope(named).status == "completed" and ds.envelope(other).status == "sent"
        assert sign(ds, {}, PLACE)["envelope_id"] == other  # no document_id: the latest one waiting


def test_sign_refuses_a_bad_body_and_says_when_nothing_waits():
    sign = DocuSignAdapter().demo_triggers()["sign"]
    with DocuSignSimulator() as ds:
        with pytest.raises(ValueError, match="document_id"):
            sign(ds, {"document_id": 1042}, PLACE)
        with pytest.raises(LookupError, match="send one first"):
            sign(ds, {"document_id": "c-1042"}, PLACE)
        _sent(ds, "c-7")
        with pytest.raises(LookupError, match="c-1042"):
            sign(ds, {"document_id": "c-1042"}, PLACE)
