"""The actions: a message, many messages, the origin's three templates, and the connection's webhook URL."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import msgspec
from twilio.base.exceptions import TwilioRestException

from hub import ConnectionContext, ValidationFailed
from hub_twilio import templates
from hub_twilio.client import TwilioFailed, sdk_client
from hub_twilio.config import Credentials, TwilioSettings
from hub_twilio.messages import SMS, Sender, Sent, SmsMessage, check_message

Phone = Annotated[str, msgspec.Meta(description="E.164, e.g. +15017122661", min_length=8, max_length=16)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
MAX_BULK = 1000


class SendSmsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    to: Phone
    body: Annotated[str, msgspec.Meta(max_length=1600)] = ""
    media_urls: Annotated[list[str], msgspec.Meta(max_length=10,
                                                  description="Images etc. Twilio fetches: an MMS")] = []

    def __post_init__(self) -> None:
        check_message(self.to, self.body, self.media_urls)


class SendSmsOut(msgspec.Struct, kw_only=True):
    sid: str
    status: str
    to: str
    sender: str
    body: str


class BulkMessage(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    to: Phone
    body: Annotated[str, msgspec.Meta(max_length=1600)] = ""
    media_urls: Annotated[list[str], msgspec.Meta(max_length=10)] = []

    def __post_init__(self) -> None:
        check_message(self.to, self.body, self.media_urls)


class SendBulkIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    bulk_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200, description=(
        "The caller's id of this send: sending the same bulk_id again texts only those not texted yet"))]
    messages: Annotated[list[BulkMessage], msgspec.Meta(min_length=1, max_length=MAX_BULK)]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for message in self.messages:
            if message.to in seen:
                raise ValueError(f"{message.to} is in messages twice: a bulk send texts each number once")
            seen.add(message.to)


class BulkError(msgspec.Struct, kw_only=True):
    code: str
    message: str


class BulkResult(msgspec.Struct, kw_only=True):
    to: str
    outcome: Literal["sent", "already_sent", "failed"]
    sid: str | None = None
    error: BulkError | None = None


class SendBulkOut(msgspec.Struct, kw_only=True):
    bulk_id: str
    sent: int
    already_sent: int
    failed: int
    results: list[BulkResult]
    """One per message, in the order given."""


class ScheduleReminderIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    to: Phone
    job_name: Text
    task_name: Text
    scheduled_for: datetime
    """When the task is scheduled. With an offset it is shown in the tenant's time zone; without one it is
    read as the tenant's local time."""


class DailyLogIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    to: Phone
    job_name: Text
    log_date: date
    summary: Annotated[str, msgspec.Meta(min_length=1, max_length=1200)]
    photo_count: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0


class SelectionReminderIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    to: Phone
    client_name: Text
    selection_name: Text
    due_date: date
    """Days left are counted from today in the tenant's time zone."""


class NoInput(msgspec.Struct, forbid_unknown_fields=True):
    pass


class AccountOut(msgspec.Struct, kw_only=True):
    account_sid: str
    friendly_name: str | None
    status: str | None
    inbound_webhook_url: str
    """Where Twilio is to send this connection's inbound messages (the number's or Messaging Service's
    "A message comes in" webhook): the hub verifies them with the connection's Auth Token."""


def sent_out(sent: Sent) -> SendSmsOut:
    return SendSmsOut(sid=sent.sid, status=sent.status, to=sent.to, sender=sent.sender, body=sent.body)


class Actions:
    def __init__(self, sender: Sender, base_url: str | None) -> None:
        self.sender = sender
        self.base_url = base_url

    async def send_sms(self, ctx: ConnectionContext, data: SendSmsIn) -> SendSmsOut:
        return sent_out(await self.sender.send(ctx, data.to, data.body, data.media_urls))

    async def send_bulk_sms(self, ctx: ConnectionContext, data: SendBulkIn) -> SendBulkOut:
        Sender.settings(ctx)
        records = [SmsMessage(id=f"{data.bulk_id}:{m.to}", to=m.to, body=m.body, media_urls=m.media_urls)
                   for m in data.messages]
        async with self.sender.bulk_lock(ctx, data.bulk_id):
            pushed = await ctx.push(SMS, records)
        results = []
        for record in records:
            result = pushed[record.id]
            if result.outcome == "failed":
                code, _, message = (result.error or "failed").partition(": ")
                results.append(BulkResult(to=record.to, outcome="failed",
                                          error=BulkError(code=code if message else "failed", message=message or code)))
            else:
                results.append(BulkResult(to=record.to, sid=result.external_id,
                                          outcome="sent" if result.outcome == "created" else "already_sent"))
        count = {o: sum(1 for r in results if r.outcome == o) for o in ("sent", "already_sent", "failed")}
        return SendBulkOut(bulk_id=data.bulk_id, results=results, **count)

    async def send_schedule_reminder(self, ctx: ConnectionContext, data: ScheduleReminderIn) -> SendSmsOut:
        zone = ZoneInfo(ctx.timezone)
        when = data.scheduled_for.replace(tzinfo=zone) if data.scheduled_for.tzinfo is None \
            else data.scheduled_for.astimezone(zone)
        body = templates.schedule_reminder(settings(ctx).templates, job=data.job_name, task=data.task_name, when=when)
        return sent_out(await self.sender.send(ctx, data.to, body))

    async def send_daily_log_notification(self, ctx: ConnectionContext, data: DailyLogIn) -> SendSmsOut:
        body = templates.daily_log(settings(ctx).templates, job=data.job_name, day=data.log_date,
                                   summary=data.summary, photo_count=data.photo_count)
        return sent_out(await self.sender.send(ctx, data.to, body))

    async def send_selection_reminder(self, ctx: ConnectionContext, data: SelectionReminderIn) -> SendSmsOut:
        today = datetime.now(ZoneInfo(ctx.timezone)).date()
        body = templates.selection_reminder(settings(ctx).templates, client_name=data.client_name,
                                            selection=data.selection_name, due=data.due_date, today=today)
        return sent_out(await self.sender.send(ctx, data.to, body))

    async def get_account(self, ctx: ConnectionContext, data: NoInput) -> AccountOut:
        credentials = ctx.credentials(Credentials)
        client = sdk_client(ctx.http, credentials, base_url=self.base_url)
        try:
            account = await client.api.v2010.accounts(credentials.account_sid).fetch_async()
        except TwilioRestException as exc:
            raise TwilioFailed(exc, "account fetch") from None
        return AccountOut(account_sid=credentials.account_sid, friendly_name=account.friendly_name,
                          status=account.status, inbound_webhook_url=ctx.webhook_url)


def settings(ctx: ConnectionContext) -> TwilioSettings:
    if not isinstance(ctx.settings, TwilioSettings):
        raise ValidationFailed("the Twilio connection's settings are unreadable", code="invalid_settings")
    return ctx.settings
