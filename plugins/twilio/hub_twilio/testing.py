"""The conformance adapter: how ``hub.testing.conformance`` (and demo mode) runs this plugin on its simulator."""

from __future__ import annotations

from urllib.parse import urlsplit

import hub_twilio.plugin
from hub.testing.adapter import ProviderAdapter
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
