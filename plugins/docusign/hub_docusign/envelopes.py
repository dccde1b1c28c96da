"""The envelope record the hub keeps (entity ``envelope`` in the tenant's records) and how what DocuSign says
about an envelope — a Connect message, or a status request — moves it on.

Every source goes through ``advance``: statuses only move forward (a late ``delivered`` after ``completed``
changes nothing), each step forward records one ``esign.envelope.<status>`` event (``esign.recipient.<status>``
for a signer's), and the step to ``completed`` first downloads the combined signed PDF and stores it as
``{document_type}/{document_id}/signed.pdf`` — once: a record that already holds the file is not downloaded
again, however often DocuSign repeats the completion.

The record also remembers when the hub last heard about the envelope (``checked_at``), so ``get_envelope``
answers from it for 15 minutes instead of polling DocuSign again.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

import msgspec

from hub import ConnectionContext, NewEvent, ProviderError
from hub_docusign.client import DocuSignApi
from hub_docusign.config import POLL_INTERVAL_SECONDS

ENTITY = "envelope"
ENVELOPE_RANK = {"draft": 0, "sent": 1, "delivered": 2, "completed": 3, "declined": 3, "voided": 3}
SIGNER_RANK = {"created": 0, "sent": 10, "autoresponded": 15, "delivered": 20, "completed": 30, "declined": 30}
"""A bounced email (``autoresponded``) is news after ``sent``; opening the envelope later supersedes it."""
ANNOUNCED = frozenset({"sent", "delivered", "completed", "declined", "voided"})
"""Envelope statuses the hub announces as ``esign.envelope.<status>`` (a draft is not news)."""
SIGNER_ANNOUNCED = frozenset({"sent", "delivered", "completed", "declined", "autoresponded"})
CUSTOM_FIELDS = {"hub_document_type": "document_type", "hub_document_id": "document_id", "hub_job_id": "job_id",
                 "hub_sent_by": "sent_by"}
"""Envelope custom fields carrying the hub's identity of the document: DocuSign hands them back in every
Connect message and status, so an envelope is filed correctly even if its record was never written."""
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
"""A segment of ``{document_type}/{document_id}/signed.pdf`` (the same rule ``send_envelope`` applies)."""
TIMES = {"sentDateTime": "sent_at", "deliveredDateTime": "delivered_at", "completedDateTime": "completed_at",
         "declinedDateTime": "declined_at", "voidedDateTime": "voided_at"}


class Signer(msgspec.Struct, kw_only=True, omit_defaults=False):
    recipient_id: str
    email: str
    name: str
    status: str = "created"
    routing_order: int = 1
    role_name: str | None = None
    delivered_at: str | None = None
    signed_at: str | None = None
    declined_at: str | None = None
    declined_reason: str | None = None


class EnvelopeRecord(msgspec.Struct, kw_only=True, omit_defaults=False):
    envelope_id: str
    status: str
    document_type: str
    document_id: str
    job_id: str | None = None
    sent_by: str | None = None
    subject: str | None = None
    template_id: str | None = None
    signers: list[Signer] = []
    sent_at: str | None = None
    delivered_at: str | None = None
    completed_at: str | None = None
    declined_at: str | None = None
    voided_at: str | None = None
    voided_reason: str | None = None
    checked_at: str | None = None
    """When DocuSign last told the hub about the envelope (a Connect message or a status request)."""
    file_id: str | None = None
    file_path: str | None = None
    """The combined signed PDF, once the envelope is completed."""

    def to_data(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> EnvelopeRecord:
        return msgspec.convert(data, cls)


def status_of(docusign_status: Any) -> str | None:
    """The hub's name for DocuSign's envelope status (``created`` is a draft); None for one it does not track."""
    status = str(docusign_status or "").lower()
    status = "draft" if status == "created" else status
    return status if status in ENVELOPE_RANK else None


def signed_path(record: EnvelopeRecord) -> str:
    return f"{record.document_type}/{record.document_id}/signed.pdf"


def is_fresh(record: EnvelopeRecord, now: datetime) -> bool:
    """Heard about within the polling interval: a status request now would break DocuSign's 15-minute rule."""
    if not record.checked_at:
        return False
    try:
        checked = datetime.fromisoformat(record.checked_at)
    except ValueError:
        return False
    return (now - checked).total_seconds() < POLL_INTERVAL_SECONDS


def _identity(summary: dict[str, Any], envelope_id: str) -> dict[str, str | None]:
    fields = ((summary.get("customFields") or {}).get("textCustomFields")) or []
    found = {CUSTOM_FIELDS[f["name"]]: str(f.get("value") or "") or None
             for f in fields if isinstance(f, dict) and f.get("name") in CUSTOM_FIELDS}
    if not all(SEGMENT.match(found.get(key) or "") for key in ("document_type", "document_id")):
        # Sent from outside the hub (or its fields were edited into something that is no path segment):
        # filed under the envelope itself.
        safe_id = envelope_id if SEGMENT.match(envelope_id) else hashlib.sha256(envelope_id.encode()).hexdigest()
        found |= {"document_type": "envelope", "document_id": safe_id}
    return found


def new_record(envelope_id: str, summary: dict[str, Any]) -> EnvelopeRecord:
    """The record of an envelope the hub has none for, from what DocuSign said about it."""
    identity = _identity(summary, envelope_id)
    return EnvelopeRecord(envelope_id=envelope_id, status="draft", document_type=identity["document_type"] or "",
                          document_id=identity["document_id"] or "", job_id=identity.get("job_id"),
                          sent_by=identity.get("sent_by"), subject=summary.get("emailSubject"),
                          template_id=summary.get("templateId"))


def _merge_signers(record: EnvelopeRecord, summary: dict[str, Any]) -> None:
    listed = ((summary.get("recipients") or {}).get("signers")) or []
    known = {s.recipient_id: s for s in record.signers}
    for row in listed:
        if not isinstance(row, dict) or not row.get("recipientId"):
            continue
        signer = known.get(str(row["recipientId"]))
        if signer is None:
            signer = Signer(recipient_id=str(row["recipientId"]), email=str(row.get("email") or ""),
                            name=str(row.get("name") or ""), role_name=row.get("roleName"))
            record.signers.append(signer)
            known[signer.recipient_id] = signer
        try:
            signer.routing_order = int(row.get("routingOrder") or signer.routing_order)
        except (TypeError, ValueError):
            pass
        _advance_signer(signer, str(row.get("status") or "").lower(), row)


def _advance_signer(signer: Signer, status: str, row: dict[str, Any] | None = None) -> bool:
    status = "completed" if status == "signed" else status
    if SIGNER_RANK.get(status, -1) <= SIGNER_RANK.get(signer.status, -1):
        return False
    signer.status = status
    row = row or {}
    signer.delivered_at = row.get("deliveredDateTime") or signer.delivered_at
    signer.signed_at = row.get("signedDateTime") or signer.signed_at
    signer.declined_at = row.get("declinedDateTime") or signer.declined_at
    signer.declined_reason = row.get("declinedReason") or signer.declined_reason
    return True


def event_data(record: EnvelopeRecord) -> dict[str, Any]:
    """What ``esign.envelope.<status>`` carries (the contract the Drive plugin and tenants read)."""
    data: dict[str, Any] = {
        "envelope_id": record.envelope_id, "status": record.status, "document_type": record.document_type,
        "document_id": record.document_id, "job_id": record.job_id,
        "signers": [{"email": s.email, "name": s.name, "status": s.status} for s in record.signers],
    }
    if record.status == "completed":
        data |= {"file_id": record.file_id, "file_path": record.file_path, "completed_at": record.completed_at}
    elif record.status == "voided":
        data["voided_reason"] = record.voided_reason
    elif record.status == "declined":
        data["declined_reason"] = next((s.declined_reason for s in record.signers if s.declined_reason), None)
    return data


async def load(ctx: ConnectionContext, envelope_id: str) -> EnvelopeRecord | None:
    data = (await ctx.records(ENTITY, [envelope_id])).get(envelope_id)
    return EnvelopeRecord.from_data(data) if data is not None else None


class NeedsSignedPdf(Exception):
    """The envelope completes and its record holds no signed PDF yet: download it, then change again."""

    def __init__(self, record: EnvelopeRecord) -> None:
        super().__init__(record.envelope_id)
        self.record = record


def change_for(envelope_id: str, summary: dict[str, Any], *, status: str | None, recipient: tuple[str, str] | None,
               now: str, signed_pdf: tuple[str, str] | None = None, seed: EnvelopeRecord | None = None):
    """The pure change ``ctx.update_record`` applies to the envelope's record (see ``advance``)."""

    def change(current: dict[str, Any] | None) -> tuple[dict[str, Any], list[NewEvent]]:
        if current is not None:
            record = EnvelopeRecord.from_data(current)
        else:
            record = msgspec.structs.replace(seed) if seed is not None else new_record(envelope_id, summary)
            record.signers = [msgspec.structs.replace(s) for s in record.signers]
        events: list[NewEvent] = []
        before = {s.recipient_id: s.status for s in record.signers}
        _merge_signers(record, summary)
        if recipient is not None:
            signer = next((s for s in record.signers if s.recipient_id == recipient[0]), None)
            if signer is not None:
                _advance_signer(signer, recipient[1])
        for signer in record.signers:
            if signer.status != before.get(signer.recipient_id) and signer.status in SIGNER_ANNOUNCED:
                events.append(NewEvent(type=f"esign.recipient.{signer.status}", data={
                    "envelope_id": record.envelope_id, "document_type": record.document_type,
                    "document_id": record.document_id, "job_id": record.job_id,
                    "recipient": {"recipient_id": signer.recipient_id, "email": signer.email, "name": signer.name,
                                  "status": signer.status, "routing_order": signer.routing_order}}))
        for key, attribute in TIMES.items():
            if summary.get(key):
                setattr(record, attribute, summary[key])
        if summary.get("voidedReason"):
            record.voided_reason = str(summary["voidedReason"])
        if signed_pdf is not None and (record.status == "completed" or status == "completed"):
            record.file_id, record.file_path = signed_pdf
        if status is not None and ENVELOPE_RANK.get(status, -1) > ENVELOPE_RANK.get(record.status, -1):
            record.status = status
            if status == "completed" and not record.file_id:
                raise NeedsSignedPdf(record)
            if status in ANNOUNCED:
                events.append(NewEvent(type=f"esign.envelope.{status}", data=event_data(record)))
        record.checked_at = now
        return record.to_data(), events

    return change


async def store_signed_pdf(ctx: ConnectionContext, record: EnvelopeRecord) -> tuple[str, str]:
    """Download the combined signed PDF and keep it as ``{document_type}/{document_id}/signed.pdf``: the
    file's (id, path)."""
    pdf = await DocuSignApi(ctx).combined_pdf(record.envelope_id)
    stored = await ctx.files.put(signed_path(record), pdf, content_type="application/pdf")
    return str(stored.id), stored.path


async def advance(ctx: ConnectionContext, envelope_id: str, summary: dict[str, Any], *, status: str | None = None,
                  recipient: tuple[str, str] | None = None, seed: EnvelopeRecord | None = None,
                  signed_pdf: tuple[str, str] | None = None) -> EnvelopeRecord:
    """Move the envelope's record on by what DocuSign said: ``summary`` (an envelope as the API or Connect's
    ``envelopeSummary`` shows it), the envelope ``status`` it announces (an envelope event's, or a status
    request's; None for a recipient event, whose summary may already show where the envelope is going), a
    signer's ``(recipient id, status)`` a recipient event announces. ``seed`` is the record to start from
    when the hub holds none (a new envelope). The record's writers take turns (``ctx.update_record``); the
    step to ``completed`` downloads the signed PDF first, unless the record already holds it."""
    now = ctx.now().isoformat()
    for _ in range(3):
        try:
            data = await ctx.update_record(ENTITY, envelope_id, change_for(
                envelope_id, summary, status=status, recipient=recipient, now=now, signed_pdf=signed_pdf, seed=seed))
        except NeedsSignedPdf as needed:
            signed_pdf = await store_signed_pdf(ctx, needed.record)
            continue
        return EnvelopeRecord.from_data(data)
    raise ProviderError("the envelope's signed PDF could not be attached to its record")
