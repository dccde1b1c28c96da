"""Hook implementations only: what DocuSign eSignature brings to the hub."""

from __future__ import annotations

from hub import Action, ProviderInfo, WebhookVerifier, hookimpl
from hub_docusign import actions, webhooks
from hub_docusign.auth import DocuSignOAuth2
from hub_docusign.config import SCOPES, SLUG, DocuSignConfig


@hookimpl
def hub_register_providers(register, config):
    register(ProviderInfo(
        slug=SLUG, title="DocuSign eSignature", category="esignature", auth_kind="oauth2",
        description="Contracts, change orders and proposals out for signature; status through Connect; the "
                    "signed PDF back as a hub file.",
        scopes=SCOPES, webhooks=True, rate_limits=DocuSignConfig.from_environ(config.environ).rate_limits,
        docs_url="https://developers.docusign.com/docs/esign-rest-api/",
    ))


@hookimpl
def hub_register_auth(register, config):
    register(DocuSignOAuth2(DocuSignConfig.from_environ(config.environ), config.environ.get("DOCUSIGN_CLIENT_ID"),
                            config.environ.get("DOCUSIGN_CLIENT_SECRET")))


@hookimpl
def hub_register_webhook_verifiers(register, config):
    keys = DocuSignConfig.from_environ(config.environ).hmac_keys
    register(WebhookVerifier(provider=SLUG, verify=webhooks.make_verify(keys), parse=webhooks.parse,
                             handle=webhooks.handle, sample=webhooks.make_sample(keys),
                             max_body_bytes=5 * 1_048_576))


@hookimpl
def hub_register_actions(register):
    for name, input, output, handler, description in (
        ("send_envelope", actions.SendEnvelopeIn, actions.SendEnvelopeOut, actions.send_envelope,
         "Send documents (base64 or hub file ids) or a template for signature, or save them as a draft; the hub "
         "follows the envelope through Connect and keeps its record."),
        ("get_envelope", actions.EnvelopeIn, actions.EnvelopeOut, actions.get_envelope,
         "The envelope's status, times and recipients (from the hub's record when DocuSign spoke about it in "
         "the last 15 minutes)."),
        ("download_document", actions.EnvelopeIn, actions.DocumentOut, actions.download_document,
         "The combined signed PDF of a completed envelope, as a hub file."),
        ("list_templates", actions.NoInput, actions.TemplatesOut, actions.list_templates,
         "The account's templates and the roles each one has to fill."),
        ("void_envelope", actions.VoidIn, actions.EnvelopeOut, actions.void_envelope,
         "Void a sent envelope, with the reason its signers are told."),
        ("resend_envelope", actions.EnvelopeIn, actions.ResendOut, actions.resend_envelope,
         "Email the signers whose turn it is again."),
    ):
        register(Action(provider=SLUG, name=name, input=input, output=output, handler=handler,
                        description=description))
