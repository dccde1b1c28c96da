"""The simulator answers the SDK as Twilio does: fetch, paged list, Twilio's error shape."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from hub import ProviderHttp
from hub_twilio.client import sdk_client
from hub_twilio.config import Credentials
from hub_twilio.simulator import ACCOUNT_SID, AUTH_TOKEN, PHONE_NUMBER


async def test_the_sdk_creates_fetches_and_pages_through_messages(simulator):
    http = ProviderHttp()
    client = sdk_client(http, Credentials(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN), base_url=simulator.url)
    try:
        sids = [(await client.messages.create_async(to=f"+1415555030{n}", from_=PHONE_NUMBER, body=f"m{n}")).sid
                for n in range(5)]
        fetched = await client.messages(sids[2]).fetch_async()
        listed = await client.messages.list_async(page_size=2)
        to_one = await client.messages.list_async(to="+14155550304")
        with pytest.raises(TwilioRestException) as missing:
            await client.messages("SM" + "0" * 32).fetch_async()
    finally:
        await http.aclose()
    assert (fetched.sid, fetched.body, fetched.status) == (sids[2], "m2", "queued")
    assert [m.sid for m in listed] == sids[::-1]  # newest first, over three pages
    assert [m.sid for m in to_one] == [sids[4]]
    assert (missing.value.status, missing.value.code) == (404, 20404)
    assert simulator.calls("/2010-04-01/Accounts/", "GET") == 1 + 3 + 1 + 1
