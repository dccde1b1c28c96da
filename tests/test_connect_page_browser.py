"""The hosted connect page in a real browser: Debian's Chromium driven by Playwright against a hub served over
HTTP, with QuickBooks and Twilio on their simulators. A user connects QuickBooks (OAuth, through the
simulator's consent page) and Twilio (a form: a wrong Auth Token first) and sees both connected.

Nothing is downloaded: Playwright drives /usr/bin/chromium (``apt-get install chromium``). Without it the
test skips, and fails in CI (``CI=true``), as the kit does for PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import msgspec
import pytest

from hub.testing.app import ADMIN_TOKEN, LiveHub
from hub.testing.fixtures import IN_CI
from hub_quickbooks.testing import QuickBooksAdapter
from hub_twilio.simulator import ACCOUNT_SID, AUTH_TOKEN
from hub_twilio.testing import TwilioAdapter

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps"]
ADAPTERS = (QuickBooksAdapter(), TwilioAdapter())
RETURN_URL = "https://app.example.com/settings/integrations"

pytestmark = [pytest.mark.only_on(database="sqlite"), pytest.mark.slow]


@pytest.fixture
def hub_plugins():
    return [adapter.plugin for adapter in ADAPTERS]


@pytest.fixture
def simulators():
    started = {adapter.provider: adapter.simulator() for adapter in ADAPTERS}
    for simulator in started.values():
        simulator.__enter__()
    yield started
    for simulator in started.values():
        simulator.__exit__(None, None, None)


@pytest.fixture
def hub_environ(simulators):
    return {k: v for adapter in ADAPTERS for k, v in adapter.environ(simulators[adapter.provider]).items()}


@pytest.fixture
def connect_link(settings, hub_factory):
    """A hub on 127.0.0.1 with QuickBooks and Twilio on their simulators, a tenant, and a connect link for it.
    (One place to switch to ``hub serve --demo`` once it exists.)"""
    hub = hub_factory(settings)
    live = LiveHub(hub)
    # The browser must be sent back to where the hub really listens: OAuth redirects and the page's own
    # links are made from the public URL, known once LiveHub has its port.
    hub.settings = msgspec.structs.replace(hub.settings, public_url=live.url)
    with live, httpx.Client(base_url=live.url) as http:
        created = http.post("/v1/admin/tenants", json={"name": "Acme Builders"},
                            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert created.status_code == 201, created.text
        key = {"Authorization": f"Bearer {created.json()['api_key']['key']}"}
        session = http.post("/v1/connect-sessions", json={"return_url": RETURN_URL}, headers=key)
        assert session.status_code == 201, session.text
        yield session.json()["url"], lambda provider: http.get(f"/v1/connections/{provider}", headers=key).json()
    asyncio.run(hub.engine.dispose())


@pytest.fixture
def browser():
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is required in CI (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


ACCESSIBILITY_SMOKE = """() => {
  const problems = [];
  const name = el => (el.getAttribute('aria-label') || el.innerText || el.value || '').trim();
  if (!document.documentElement.lang) problems.push('html has no lang');
  for (const landmark of ['header', 'main', 'footer'])
    if (!document.querySelector(landmark)) problems.push('no ' + landmark);
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea'))
    if (!el.labels || el.labels.length === 0) problems.push('no label: ' + el.id);
  for (const el of document.querySelectorAll('a, button, summary'))
    if (!name(el)) problems.push('no name: ' + el.outerHTML);
  const ids = [...document.querySelectorAll('[id]')].map(el => el.id);
  if (new Set(ids).size !== ids.length) problems.push('duplicate ids');
  for (const el of document.querySelectorAll('[aria-describedby]'))
    for (const id of el.getAttribute('aria-describedby').split(' '))
      if (!document.getElementById(id)) problems.push('dangling ' + id);
  return problems;
}"""


def test_a_user_connects_quickbooks_and_twilio_in_a_browser(connect_link, simulators, browser, tmp_path):
    started = time.monotonic()
    url, connection = connect_link
    page = browser.new_page(viewport={"width": 1024, "height": 900})
    blocked: list[str] = []
    page.on("console", lambda message: blocked.append(message.text) if "Content Security Policy" in message.text
            else None)

    page.goto(url)
    assert page.get_by_role("heading", level=1).inner_text() == "Connect your apps"
    assert page.evaluate(ACCESSIBILITY_SMOKE) == []

    # The keyboard reaches the Twilio form: Tab from the top of the page.
    account_sid = page.get_by_label("Account SID")
    for _ in range(15):
        page.keyboard.press("Tab")
        if account_sid.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail("the Account SID field cannot be reached with Tab")

    # QuickBooks: the Connect button, the provider's consent page, and back to the page.
    page.get_by_role("button", name="Connect QuickBooks Online").click()
    page.wait_for_url(f"{simulators['quickbooks'].url}/connect/oauth2?*")
    page.get_by_role("button", name="Connect").click()
    page.wait_for_url(f"{url}?*")
    assert "QuickBooks Online connected" in page.get_by_role("status").inner_text()
    assert connection("quickbooks")["status"] == "connected"

    # Twilio: a wrong Auth Token first, shown next to the field; then the right one.
    account_sid.fill(ACCOUNT_SID)
    page.get_by_label("Auth token").fill("not-the-auth-token-0123")
    page.get_by_role("textbox", name="Sender").fill("+15017122661")
    page.get_by_role("button", name="Connect Twilio").click()
    summary = page.get_by_role("alert")
    assert "did not accept" in summary.inner_text()
    token_field = page.get_by_label("Auth token")
    assert token_field.get_attribute("aria-invalid") == "true"
    assert token_field.input_value() == ""  # never echoed back
    assert "did not accept" in page.locator("#twilio-credentials-auth-token-error").inner_text()
    assert page.get_by_label("Account SID").input_value() == ACCOUNT_SID
    assert page.evaluate(ACCESSIBILITY_SMOKE) == []
    page.screenshot(path=str(tmp_path / "connect-page-error.png"), full_page=True)
    summary.get_by_role("link").first.click()  # the summary's link takes the focus to the field
    assert token_field.evaluate("el => el === document.activeElement")
    token_field.fill(AUTH_TOKEN)
    page.get_by_role("button", name="Connect Twilio").click()
    page.wait_for_url(f"{url}?*provider=twilio*")

    assert "Twilio connected" in page.get_by_role("status").inner_text()
    assert page.locator(".status-connected").count() == 2
    assert connection("twilio")["status"] == "connected"
    assert AUTH_TOKEN not in page.content()
    page.screenshot(path=str(tmp_path / "connect-page.png"), full_page=True)

    page.set_viewport_size({"width": 320, "height": 800})  # a narrow phone: nothing scrolls sideways
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    page.screenshot(path=str(tmp_path / "connect-page-320.png"), full_page=True)
    assert page.get_by_role("link", name="Done").get_attribute("href") == RETURN_URL
    assert blocked == []
    print(f"browser test: {time.monotonic() - started:.1f} s after set-up; screenshots in {tmp_path}")
