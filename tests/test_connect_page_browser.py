"""The hosted connect page in a real browser: Debian's Chromium driven by Playwright against a hub in demo
mode (``hub serve --demo``: every installed plugin on its simulator). A user connects QuickBooks (OAuth, through the
simulator's consent page) and Twilio (a form: a wrong Auth Token first) and sees both connected.

Nothing is downloaded: Playwright drives /usr/bin/chromium (``apt-get install chromium``). Without it the
test skips, and fails in CI (``CI=true``), as the kit does for PostgreSQL and Redis."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from hub.demo import Demo
from hub.testing.fixtures import IN_CI
from hub_twilio.simulator import ACCOUNT_SID, AUTH_TOKEN

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps"]
RETURN_URL = "https://app.example.com/settings/integrations"

pytestmark = pytest.mark.slow


@pytest.fixture
def connect_link():
    """``hub serve --demo`` (every installed plugin on its simulator) with a new tenant of its own, which has
    connected nothing yet, and a connect link for it: (link, the simulators, a tenant's view of a connection)."""
    with Demo(port=0, echo=lambda line: None) as demo, httpx.Client(base_url=demo.url) as http:
        created = http.post("/v1/admin/tenants", json={"name": "Acme Builders"},
                            headers={"Authorization": f"Bearer {demo.admin_token}"})
        assert created.status_code == 201, created.text
        key = {"Authorization": f"Bearer {created.json()['api_key']['key']}"}
        session = http.post("/v1/connect-sessions", json={"return_url": RETURN_URL,
                                                          "providers": ["quickbooks", "twilio"]}, headers=key)
        assert session.status_code == 201, session.text
        yield (session.json()["url"], demo.simulators,
               lambda provider: http.get(f"/v1/connections/{provider}", headers=key).json())


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


def test_a_user_connects_quickbooks_and_twilio_in_a_browser(connect_link, browser, tmp_path):
    started = time.monotonic()
    url, simulators, connection = connect_link
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
