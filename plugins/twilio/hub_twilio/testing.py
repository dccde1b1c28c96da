"""The conformance adapter: how ``hub.testing.conformance`` (and demo mode) runs this plugin on its simulator."""

from __future__ import annotations

from urllib.parse import urlsplit

import hub_twilio.plugin
from hub.testing.adapter import DemoPlace, DemoStep, ProviderAdapter
from hub_twilio.simulator import (
    ACCOUNT_SID,
    API_KEY_SECRET,
    API_KEY_SID,
    AUTH_TOKEN,
    PHONE_NUMBER,
    TwilioSimulator,
    signature,
)

SETTINGS = {"sender": PHONE_NUMBER, "messages_per_second": 50}


class TwilioAdapter(ProviderAdapter):
    provider = "twilio"
    plugin = ("twilio", hub_twilio.plugin)
    probe = ("get_account", {})

    def simulator(self) -> TwilioSimulator:
        return TwilioSimulator(messages_per_second=SETTINGS["messages_per_second"])

    def environ(self, simulator: TwilioSimulator) -> dict[str, str]:
        return {"TWILIO_BASE_URL": simulator.url}

    def credentials(self, simulator: TwilioSimulator) -> dict[str, str]:
        return {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}

    def bad_credentials(self, simulator: TwilioSimulator) -> dict[str, str]:
        return {"account_sid": ACCOUNT_SID, "auth_token": "not-the-auth-token"}

    async def connect(self, client, tenant, simulator: TwilioSimulator) -> None:
        response = await client.put(f"/v1/connections/{self.provider}", headers=tenant.headers,
                                    json={"credentials": self.credentials(simulator), "settings": SETTINGS})
        assert response.status_code in (200, 201), response.text

    def secrets(self, simulator: TwilioSimulator) -> list[str]:
        return super().secrets(simulator) + [AUTH_TOKEN, API_KEY_SECRET, API_KEY_SID + ":" + API_KEY_SECRET]

    def outbound_samples(self):
        return {"sms": [{"id": f"reminder-{n}", "to": f"+1415555010{n}", "body": f"Crew arrives at {7 + n} am"}
                        for n in range(3)]}

    def remote_count(self, simulator: TwilioSimulator, entity: str) -> int:
        return len(simulator.sent())

    def webhook_path(self, connection) -> str:
        return f"/v1/webhooks/{self.provider}/{connection['id']}"

    def webhook(self, simulator: TwilioSimulator, connection, *, secret: str = "good"):
        from hub.testing import PUBLIC_URL

        call = simulator.inbound_message(PUBLIC_URL + self.webhook_path(connection), from_="+14155550111",
                                         body="Running 10 minutes late")
        if secret != "good":
            from urllib.parse import parse_qs

            params = parse_qs(call.body.decode())
            call.headers["X-Twilio-Signature"] = signature("someone-elses-auth-token", call.url, params)
        assert urlsplit(call.url).path == self.webhook_path(connection)
        return call.body, call.headers

    # -- demo mode ------------------------------------------------------------------------------------
    def demo_simulator(self) -> TwilioSimulator:
        """Reporting each message ``sent`` then ``delivered`` to its status callback, as Twilio does."""
        simulator = self.simulator()
        simulator.auto_deliver = True
        return simulator

    def demo_steps(self, simulator: TwilioSimulator) -> list[DemoStep]:
        lead = "+14155550100"
        return [
            DemoStep("Twilio: text the site lead (Twilio reports it sent, then delivered)", "POST",
                     "/v1/connections/twilio/actions/send_sms", {"to": lead, "body": "Crew arrives at 7 am tomorrow"},
                     events=("sms.status",), data={"sms.status": {"to": lead, "status": "delivered"}}),
            DemoStep("Twilio: the site lead texts back", "POST", "inbound-sms",
                     {"from": lead, "body": "Gate code is 4321"}, target="provider",
                     events=("sms.received",), data={"sms.received": {"from": lead}},
                     note="texting STOP opts the number out: the hub then refuses to text it (409)"),
        ]

    def demo_triggers(self):
        return {"inbound-sms": _inbound_sms}


def _inbound_sms(simulator: TwilioSimulator, body: dict, place: DemoPlace) -> dict:
    """Someone texts the tenant's number: Twilio calls the hub's webhook, signed."""
    import httpx

    sender, text = body.get("from"), body.get("body")
    if not isinstance(sender, str) or not sender.startswith("+") or not isinstance(text, str):
        raise ValueError('"from" (an E.164 number like +14155550100) and "body" (text) are required')
    call = simulator.inbound_message(f"{place.hub_url}/v1/webhooks/twilio/{place.connection['id']}",
                                     from_=sender, body=text)
    answer = httpx.post(call.url, content=call.body, headers=call.headers, timeout=10)
    from urllib.parse import parse_qs

    return {"message_sid": parse_qs(call.body.decode())["MessageSid"][0], "hub_answered": answer.status_code,
            "twiml": answer.text}
