"""Hook implementations only: what Twilio brings to the hub."""

from __future__ import annotations

from hub import Action, ApiKeyAuth, EntityMapper, OutboundSync, ProviderInfo, WebhookVerifier, hookimpl
from hub_twilio import actions, mappers, webhooks
from hub_twilio.client import Checker
from hub_twilio.config import RATE_LIMITS, SLUG, Credentials, TwilioSettings, base_url, sender_limits
from hub_twilio.messages import OPT_OUTS, SMS, Sender, SmsMessage


@hookimpl
def hub_register_providers(register):
    register(ProviderInfo(
        slug=SLUG, title="Twilio", category="messaging", auth_kind="api_key",
        description="Text messages (SMS and MMS) out, one or in bulk at the sender's rate, with the origin's "
                    "templates; inbound messages and delivery statuses in; STOP / START opt-outs honoured.",
        settings=TwilioSettings, webhooks=True, rate_limits=RATE_LIMITS, connection_rate_limits=sender_limits,
        record_lists={"opt-outs": OPT_OUTS},
        docs_url="https://www.twilio.com/docs/messaging/api/message-resource",
    ))


@hookimpl
def hub_register_auth(register, config):
    register(ApiKeyAuth(SLUG, fields=Credentials, check=Checker(base_url(config.environ))))


@hookimpl
def hub_register_syncs(register, config):
    sender = Sender(base_url(config.environ))
    register(OutboundSync(provider=SLUG, entity=SMS, push=sender.push, batch_size=1, schema=SmsMessage))


@hookimpl
def hub_register_entity_mappers(register):
    register(EntityMapper(provider=SLUG, entity=SMS, to_provider=mappers.sms_to_twilio))


@hookimpl
def hub_register_webhook_verifiers(register):
    register(WebhookVerifier(provider=SLUG, verify=webhooks.verify, parse=webhooks.parse, handle=webhooks.handle,
                             reply=webhooks.reply, per_connection=True))


@hookimpl
def hub_register_actions(register, config):
    base = base_url(config.environ)
    handlers = actions.Actions(Sender(base), base)
    for name, input_, output, description in (
        ("send_sms", actions.SendSmsIn, actions.SendSmsOut,
         "Text one number (media_urls make it an MMS), unless it opted out; statuses come back as sms.status."),
        ("send_bulk_sms", actions.SendBulkIn, actions.SendBulkOut,
         "Text many numbers at the sender's rate: one result per message (sid or error); the same bulk_id "
         "sent again texts only those not texted yet."),
        ("send_schedule_reminder", actions.ScheduleReminderIn, actions.SendSmsOut,
         "The schedule reminder template: job, task and its date in the tenant's time zone."),
        ("send_daily_log_notification", actions.DailyLogIn, actions.SendSmsOut,
         "The daily log template: job, date, summary and how many photos were added."),
        ("send_selection_reminder", actions.SelectionReminderIn, actions.SendSmsOut,
         "The selection reminder template: client, selection and the days left until it is due."),
        ("get_account", actions.NoInput, actions.AccountOut,
         "The connected Twilio account, and the URL to give Twilio for this connection's inbound messages."),
    ):
        register(Action(provider=SLUG, name=name, input=input_, output=output, handler=getattr(handlers, name),
                        description=description))
