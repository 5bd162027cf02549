"""Sign-in with the platform and the alert settings in a real browser (Debian's Chromium) against a live server and
the sandbox: "Continue with Meta" / "Continue with Google", the platform's consent screen, back to pick the account,
the connection stored and showing when its token expires; the alert settings page and its "Send a test"."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from credentials.models import Connection
from sandbox.base import FakeServer
from tests.alerts.conftest import WebhookReceiver
from tests.browser.helpers import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _continue_with(page, live_server, code, name):
    page.goto(f"{live_server.url}/platforms/")
    page.locator(f"#platform-{code}").get_by_role("link", name=f"Continue with {name}").click()
    # The platform's own consent screen (the sandbox's, on its own origin).
    heading = re.compile(f"Sign in with {re.escape(name.split(' ')[0])}")
    expect(page.get_by_role("heading", name=heading)).to_be_visible()


def test_connect_meta_by_signing_in_with_meta(signed_in, live_server, platforms, user):
    page = signed_in
    _continue_with(page, live_server, "meta", "Meta")
    expect(page.get_by_label("ads_management")).to_be_checked()
    shot(page, "oauth-consent", readme=False)
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_role("heading", name="Signed in with Meta")).to_be_visible()
    page.get_by_label(re.compile("Demo ad account")).check()
    page.get_by_label("Label").fill("EU brand account")
    shot(page, "oauth-accounts")
    page.get_by_role("button", name="Test and connect").click()
    expect(page.get_by_role("heading", name="Meta · EU brand account")).to_be_visible()
    expect(page.locator(".expiry").first).to_contain_text(re.compile(r"expires in (59|60) days"))
    expect(page.get_by_text("Signed in with the platform", exact=True)).to_be_visible()
    connection = Connection.objects.get(owner=user)
    assert connection.auth_method == "oauth" and connection.secrets["access_token"] not in page.content()
    shot(page, "oauth-connected", readme=False)


def test_a_cancelled_meta_sign_in_says_so(signed_in, live_server, platforms, user):
    page = signed_in
    _continue_with(page, live_server, "meta", "Meta")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".msg-error")).to_contain_text("cancelled or the permissions were refused")
    assert not Connection.objects.exists()


def test_connect_google_by_signing_in_with_google(signed_in, live_server, platforms, user):
    page = signed_in
    _continue_with(page, live_server, "google_dm", "Google (Data Manager API)")
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_role("heading", name=re.compile("Signed in with Google"))).to_be_visible()
    page.get_by_label(re.compile("Google Ads 123-456-7890")).check()
    page.get_by_label("Label").fill("Google main")
    page.get_by_role("button", name="Test and connect").click()
    # Google's own choices are still the marketer's to state: refused until they are.
    expect(page.locator(".errorlist").first).to_be_visible()
    page.get_by_label("Consent: ad user data").select_option("GRANTED")
    page.get_by_label("Consent: ad personalization").select_option("DENIED")
    page.get_by_label(re.compile("accepted the Customer Match terms")).check()
    page.get_by_role("button", name="Test and connect").click()
    expect(page.get_by_role("heading", name=re.compile("Google main"))).to_be_visible()
    connection = Connection.objects.get(owner=user)
    assert connection.config["customer_id"] == "1234567890" and connection.auth_method == "oauth"
    assert "none reported by" in page.locator(".expiry").first.inner_text()


@pytest.fixture
def receiver(settings):
    fake = WebhookReceiver()
    with FakeServer([fake]) as server:
        settings.FAKE_PLATFORMS_URL = server.url
        settings.EGRESS_ALLOW_SANDBOX = True
        fake.url = f"{server.url}/hooks/services/T000/B000/XXXX"
        yield fake


def test_the_alert_settings_page_saves_channels_and_sends_a_test(signed_in, live_server, user, receiver):
    page = signed_in
    page.get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    page.get_by_label("Send alerts to a webhook").check()
    page.get_by_label("Webhook URL").fill("https://169.254.169.254/latest/meta-data")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".has-error .errorlist")).to_contain_text("cannot be used")
    page.get_by_label("Webhook URL").fill(receiver.url)
    page.get_by_label("A scheduled run was skipped").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".msg-success")).to_contain_text("Alert settings saved")
    page.get_by_role("button", name="Send a test").click()
    expect(page.locator(".msg-success").first).to_contain_text("test alert sent")
    expect(page.locator(".incidents")).to_contain_text("Test alert")
    assert len(mail.outbox) == 1 and len(receiver.requests) == 1
    shot(page, "alerts")
