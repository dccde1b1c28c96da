"""Actions: ``send_envelope`` (documents or a template, sent or as a draft, with the hub's Connect listener),
``get_envelope`` (the record when DocuSign spoke about it in the last 15 minutes, else one status request),
``download_document`` (the combined signed PDF as a hub file), ``list_templates``, ``void_envelope`` and
``resend_envelope``."""

from __future__ import annotations

import base64
import uuid
from typing import Annotated, Any, Literal

import msgspec

from hub import Conflict, ConnectionContext, NotFound, ValidationFailed
from hub_docusign import envelopes
from hub_docusign.client import DocuSignApi
from hub_docusign.envelopes import EnvelopeRecord, Signer

CONNECT_EVENTS = ("envelope-sent", "envelope-delivered", "envelope-completed", "envelope-declined",
                  "envelope-voided", "recipient-sent", "recipient-delivered", "recipient-completed",
                  "recipient-declined", "recipient-autoresponded")
Segment = Annotated[str, msgspec.Meta(pattern=envelopes.SEGMENT.pattern)]
"""A path segment of ``{document_type}/{document_id}/signed.pdf``: no slash, no dot-dot, no leading dot."""
EnvelopeId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9-]{1,100}$")]


class SignerIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    email: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=100)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    routing_order: Annotated[int, msgspec.Meta(ge=1, le=999)] | None = None
    role_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    """The template role this signer fills (with ``template_id``)."""
    tabs: dict[str, Any] | None = None
    """DocuSign tabs (``signHereTabs``, ``dateSignedTabs`` ...) as DocuSign takes them."""


class DocumentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    file_extension: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{1,10}$")] = "pdf"
    content_base64: bytes | None = None
    """The document, base64-encoded (decoded on the way in: bad base64 is a 422)."""
    file_id: uuid.UUID | None = None
    """Or a file the hub holds for the tenant (``POST /v1/files``): for documents too big for a request body."""

    def __post_init__(self) -> None:
        if (self.content_base64 is None) == (self.file_id is None):
            raise ValueError("a document takes exactly one of content_base64 and file_id")
        if self.content_base64 is not None and not self.content_base64:
            raise ValueError("a document's content is empty")


class SendEnvelopeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    signers: Annotated[list[SignerIn], msgspec.Meta(min_length=1, max_length=50)]
    document_type: Segment
    """What is being signed, in the tenant's terms (``contract``, ``change_order``, ``proposal``)."""
    document_id: Segment
    message: Annotated[str, msgspec.Meta(max_length=10000)] | None = None
    documents: Annotated[list[DocumentIn], msgspec.Meta(max_length=20)] = []
    template_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9-]{1,100}$")] | None = None
    status: Literal["sent", "draft"] = "sent"
    job_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    sent_by: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    """Who sent it (the tenant's user id), kept on the envelope record."""

    def __post_init__(self) -> None:
        if bool(self.documents) == bool(self.template_id):
            raise ValueError("an envelope takes documents or a template_id, exactly one of them")
        if self.template_id and any(s.role_name is None for s in self.signers):
            raise ValueError("with a template_id every signer names the role_name it fills")


class SendEnvelopeOut(msgspec.Struct, kw_only=True):
    envelope_id: str
    status: str
    document_type: str
    document_id: str
    job_id: str | None = None


class EnvelopeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    envelope_id: EnvelopeId


class VoidIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    envelope_id: EnvelopeId
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class EnvelopeOut(msgspec.Struct, kw_only=True):
    envelope: EnvelopeRecord
    cached: bool
    """Answered from the hub's record (DocuSign spoke about the envelope in the last 15 minutes)."""


class DocumentOut(msgspec.Struct, kw_only=True):
    envelope_id: str
    file_id: str
    file_path: str
    size: int
    sha256: str


class NoInput(msgspec.Struct, forbid_unknown_fields=True):
    pass


class TemplateOut(msgspec.Struct, kw_only=True):
    template_id: str
    name: str
    description: str | None = None
    roles: list[str] = []
    last_modified: str | None = None


class TemplatesOut(msgspec.Struct, kw_only=True):
    templates: list[TemplateOut]


class ResendOut(msgspec.Struct, kw_only=True):
    envelope_id: str
    resent: bool


# -- send ------------------------------------------------------------------------------------------------------
async def _documents(ctx: ConnectionContext, documents: list[DocumentIn]) -> list[dict[str, Any]]:
    out = []
    for n, doc in enumerate(documents, start=1):
        content = doc.content_base64 if doc.content_base64 is not None else await ctx.files.read(doc.file_id)
        out.append({"documentId": str(n), "name": doc.name, "fileExtension": doc.file_extension.lower(),
                    "documentBase64": base64.b64encode(content).decode()})
    return out


def _signer_json(signer: SignerIn, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"email": signer.email, "name": signer.name, "recipientId": str(n),
                           "routingOrder": str(signer.routing_order or n)}
    if signer.role_name:
        out["roleName"] = signer.role_name
    if signer.tabs:
        out["tabs"] = signer.tabs
    return out


def envelope_definition(ctx: ConnectionContext, data: SendEnvelopeIn, documents: list[dict[str, Any]]
                        ) -> dict[str, Any]:
    identity = {"hub_document_type": data.document_type, "hub_document_id": data.document_id,
                "hub_job_id": data.job_id, "hub_sent_by": data.sent_by}
    definition: dict[str, Any] = {
        "emailSubject": data.subject,
        "status": "sent" if data.status == "sent" else "created",
        "customFields": {"textCustomFields": [{"name": name, "value": value, "show": "false", "required": "false"}
                                              for name, value in identity.items() if value]},
        "eventNotification": {
            "url": ctx.webhook_url, "events": list(CONNECT_EVENTS), "includeHMAC": "true",
            "requireAcknowledgment": "true", "loggingEnabled": "true", "deliveryMode": "SIM",
            "eventData": {"version": "restv2.1", "format": "json", "includeData": ["recipients", "custom_fields"]},
        },
    }
    if data.message:
        definition["emailBlurb"] = data.message
    signers = [_signer_json(s, n) for n, s in enumerate(data.signers, start=1)]
    if data.template_id:
        definition["templateId"] = data.template_id
        definition["templateRoles"] = [{k: v for k, v in s.items() if k != "recipientId"} for s in signers]
    else:
        definition["documents"] = documents
        definition["recipients"] = {"signers": signers}
    return definition


async def send_envelope(ctx: ConnectionContext, data: SendEnvelopeIn) -> SendEnvelopeOut:
    documents = await _documents(ctx, data.documents)
    created = await DocuSignApi(ctx).create_envelope(envelope_definition(ctx, data, documents))
    envelope_id = str(created.get("envelopeId") or "")
    if not envelope_id:
        raise ValidationFailed("DocuSign answered the envelope create without an envelope id",
                               code="docusign_no_envelope_id")
    status = envelopes.status_of(created.get("status")) or ("sent" if data.status == "sent" else "draft")
    orders = [s.routing_order or n for n, s in enumerate(data.signers, start=1)]
    record = EnvelopeRecord(
        envelope_id=envelope_id, status="draft", document_type=data.document_type, document_id=data.document_id,
        job_id=data.job_id, sent_by=data.sent_by, subject=data.subject, template_id=data.template_id,
        signers=[Signer(recipient_id=str(n), email=s.email, name=s.name, routing_order=order,
                        role_name=s.role_name, status="created")
                 for n, (s, order) in enumerate(zip(data.signers, orders, strict=True), start=1)],
        sent_at=created.get("statusDateTime") if status == "sent" else None,
    )
    # The send is news the moment DocuSign accepts it: recorded here (once), so Connect's envelope-sent,
    # arriving after, changes nothing.
    record = await envelopes.advance(ctx, envelope_id, {}, status=status, seed=record)
    return SendEnvelopeOut(envelope_id=envelope_id, status=record.status, document_type=record.document_type,
                           document_id=record.document_id, job_id=record.job_id)


# -- status ----------------------------------------------------------------------------------------------------
async def current(ctx: ConnectionContext, envelope_id: str) -> tuple[EnvelopeRecord, bool]:
    """The envelope record, and whether it was fresh enough to answer without a status request (DocuSign
    allows one per envelope per 15 minutes). A request that finds news moves the record on as a Connect
    message would: events, and the signed PDF when it completed."""
    record = await envelopes.load(ctx, envelope_id)
    if record is not None and envelopes.is_fresh(record, ctx.now()):
        return record, True
    summary = await DocuSignApi(ctx).envelope(envelope_id)
    record = await envelopes.advance(ctx, envelope_id, summary, status=envelopes.status_of(summary.get("status")))
    return record, False


async def get_envelope(ctx: ConnectionContext, data: EnvelopeIn) -> EnvelopeOut:
    record, cached = await current(ctx, data.envelope_id)
    return EnvelopeOut(envelope=record, cached=cached)


async def download_document(ctx: ConnectionContext, data: EnvelopeIn) -> DocumentOut:
    record, _ = await current(ctx, data.envelope_id)
    if record.status != "completed":
        raise Conflict(f"the envelope is {record.status}; its signed document exists once it is completed",
                       code="envelope_not_completed")
    try:
        stored = await ctx.files.get(record.file_id or "")
    except NotFound:  # the tenant deleted it, or the hub never got it: fetch it (again)
        signed_pdf = await envelopes.store_signed_pdf(ctx, record)
        record = await envelopes.advance(ctx, record.envelope_id, {}, signed_pdf=signed_pdf)
        stored = await ctx.files.get(record.file_id or "")
    return DocumentOut(envelope_id=record.envelope_id, file_id=str(stored.id), file_path=stored.path,
                       size=stored.size, sha256=stored.sha256)


# -- templates, void, resend -------------------------------------------------------------------------------------
async def list_templates(ctx: ConnectionContext, data: NoInput) -> TemplatesOut:
    rows = await DocuSignApi(ctx).templates()
    return TemplatesOut(templates=[TemplateOut(
        template_id=str(t.get("templateId")), name=str(t.get("name") or ""), description=t.get("description") or None,
        roles=[str(s.get("roleName")) for s in ((t.get("recipients") or {}).get("signers") or [])
               if isinstance(s, dict) and s.get("roleName")],
        last_modified=t.get("lastModified")) for t in rows if t.get("templateId")])


async def void_envelope(ctx: ConnectionContext, data: VoidIn) -> EnvelopeOut:
    await DocuSignApi(ctx).void(data.envelope_id, data.reason)
    record = await envelopes.advance(ctx, data.envelope_id, {"voidedReason": data.reason}, status="voided")
    return EnvelopeOut(envelope=record, cached=True)


async def resend_envelope(ctx: ConnectionContext, data: EnvelopeIn) -> ResendOut:
    await DocuSignApi(ctx).resend(data.envelope_id)
    return ResendOut(envelope_id=data.envelope_id, resent=True)

