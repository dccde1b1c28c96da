"""Cross-plugin automation: a completed e-signature envelope's signed PDF, filed into its job's folder.

The e-signature plugin (DocuSign, or any other) records ``esign.envelope.completed`` with the signed PDF
stored as a hub file (``file_id``) and the envelope's ``job_id``. This observer runs for every event of every
tenant; it acts only when the tenant has a Google Drive connection whose ``file_signed_envelopes`` setting
is on. The PDF goes through the ``document`` outbound sync as the document ``esign:{envelope_id}``, so an
observer retried after a failure (or an event seen twice) uploads nothing twice: the mapping says it is
there already."""

from __future__ import annotations

import logging

from hub import HubError, ValidationFailed
from hub_google_drive.config import SLUG
from hub_google_drive.syncs import DOCUMENT

log = logging.getLogger("hub_google_drive")

EVENT = "esign.envelope.completed"


def _name(data: dict) -> str:
    kind, ref = data.get("document_type"), data.get("document_id")
    return f"{kind}-{ref}-signed.pdf" if kind and ref else f"envelope-{data.get('envelope_id')}-signed.pdf"


async def file_signed_envelope(event, context) -> None:
    if event.type != EVENT or not isinstance(event.data, dict):
        return
    data = event.data
    if not data.get("file_id") or not data.get("job_id") or not data.get("envelope_id"):
        log.info("event %s: no signed file or no job to file it under; nothing filed", event.id)
        return
    ctx = await context.connection(SLUG)
    if ctx is None or not ctx.settings.file_signed_envelopes:
        return
    try:
        stored = await ctx.files.get(data["file_id"])
    except HubError:
        log.warning("event %s: the signed file %s is not the tenant's; nothing filed", event.id, data["file_id"])
        return
    document = {"id": f"esign:{data['envelope_id']}", "job_id": str(data["job_id"]), "name": _name(data),
                "mime_type": stored.content_type or "application/pdf", "file_id": str(stored.id),
                "version": stored.sha256}
    try:
        result = (await ctx.push(DOCUMENT, [document]))[document["id"]]
    except ValidationFailed as exc:  # the event will not get better on a retry
        log.warning("event %s: not filed: %s", event.id, exc.message)
        return
    if result.outcome == "failed":
        raise HubError(f"the signed PDF of envelope {data['envelope_id']} was not filed: {result.error}")
    log.info("event %s: envelope %s's signed PDF is Drive file %s (%s)", event.id, data["envelope_id"],
             result.external_id, result.outcome)

