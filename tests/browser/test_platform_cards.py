"""The Platforms page in Chromium at desktop (1366 px) and phone (390 px) widths: the cards' layout, a wrong
token and its retry, long identifiers, readable buttons on hover, the connection's own page; and the
dashboard's welcome steps. Every page is also watched for console errors (tests/browser/conftest.py).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from credentials.models import Connection
from sandbox.credentials import DEMO_CREDENTIALS
from tests.browser.helpers import contrast_ratio, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
META = DEMO_CREDENTIALS["meta"]


@pytest.fixture(params=[DESKTOP, PHONE], ids=["desktop", "phone"])
def viewport(request):
    return request.param


@pytest.fixture
def width(viewport) -> str:
    return "desktop" if viewport["width"] > 800 else "phone"


@pytest.fixture
def demo(settings, platforms):
    """As under `make run`: demo mode (the demo hint and its Fill button; a loopback Netflix endpoint)."""
    settings.DEMO_MODE = True
    return platforms


def fits_the_window(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def box(locator) -> dict:
    return locator.bounding_box()


def open_connect_form(page, live_server, code):
    page.goto(f"{live_server.url}/platforms/")
    card = page.locator(f"#platform-{code}")
    card.get_by_role("button", name=re.compile("^Connect")).click()
    expect(card.locator(".connect-form form")).to_be_visible()
    return card


def connect_with_demo_values(page, live_server, demo, code):
    card = open_connect_form(page, live_server, code)
    card.get_by_role("button", name="Fill demo values").click()
    if code == "netflix":
        card.locator("[name=base_url]").fill(demo.netflix_base_url())
    card.get_by_role("button", name="Test and connect").click()
    expect(card.locator(".platform-status")).to_have_text("Active")
    return card


def test_a_wrong_token_marks_its_field_keeps_the_app_secret_and_the_retry_needs_only_the_token(
        signed_in, live_server, demo, user, viewport, width):
    page = signed_in
    card = open_connect_form(page, live_server, "meta")

    # The open card takes its row: it is as wide as the grid, and its neighbours keep their own height.
    grid, meta, linkedin = box(page.locator(".platform-grid")), box(card), box(page.locator("#platform-linkedin"))
    assert abs(meta["width"] - grid["width"]) < 2
    assert linkedin["height"] < meta["height"] / 2
    assert fits_the_window(page)

    card.get_by_role("button", name="Fill demo values").click()
    card.locator("[name=access_token]").fill("EAA-wrong-token-0000")
    card.get_by_role("button", name="Test and connect").click()

    alert = card.locator(".alert-error")
    expect(alert).to_contain_text("Cannot parse access token. Generate a new access token")
    expect(alert).not_to_contain_text("update the connection")
    token = card.locator(".field", has=page.locator("[name=access_token]"))
    expect(token).to_have_class(re.compile(r"\bhas-error\b"))
    expect(token).to_contain_text("Meta refused this value: enter it again.")
    expect(token.locator("input")).to_have_attribute("aria-invalid", "true")
    secret = card.locator(".field", has=page.locator("[name=app_secret]"))
    expect(secret.locator(".badge-kept")).to_be_visible()
    expect(secret).not_to_have_class(re.compile(r"\bhas-error\b"))
    expect(secret.locator("input")).to_have_value("")
    # Nothing typed into a secret field comes back (the demo hint lists the demo values, so look at the inputs).
    assert "EAA-wrong-token-0000" not in page.content()
    for name in ("app_secret", "access_token"):
        assert card.locator(f"[name={name}]").get_attribute("value") is None
    assert fits_the_window(page)
    shot(page, "connect-error" if width == "desktop" else "connect-error-phone", readme=width == "desktop")

    card.locator("[name=access_token]").fill(META["access_token"])
    card.get_by_role("button", name="Test and connect").click()
    expect(card.locator(".platform-status")).to_have_text("Active")
    connection = Connection.objects.get(owner=user, platform__code="meta")
    assert connection.secrets == {"app_secret": META["app_secret"], "access_token": META["access_token"]}
    assert META["access_token"] not in page.content()


def test_long_identifiers_wrap_inside_their_card_and_choices_show_their_label(signed_in, live_server, demo,
                                                                              viewport, width):
    page = signed_in
    for code in ("google_ads", "netflix"):
        connect_with_demo_values(page, live_server, demo, code)
    page.goto(f"{live_server.url}/platforms/")
    for code in ("google_ads", "netflix"):
        card = page.locator(f"#platform-{code}")
        right = box(card)["x"] + box(card)["width"]
        values = card.locator(".kv dd")
        assert values.count() >= 3
        for value in values.all():
            assert value.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), value.inner_text()
            assert box(value)["x"] + box(value)["width"] <= right
    google = page.locator("#platform-google_ads")
    expect(google).to_contain_text("demo-client.apps.googleusercontent.com")
    expect(google.locator(".kv")).to_contain_text("Granted")
    expect(google).not_to_contain_text("GRANTED")
    assert fits_the_window(page)
    shot(page, f"platforms-connected-{width}", readme=False)


# The colour under an element: its own background, or the first opaque one of its ancestors.
EFFECTIVE_COLOURS = """el => {
  let node = el, background = "rgba(0, 0, 0, 0)";
  while (node && node.nodeType === 1) {
    const colour = getComputedStyle(node).backgroundColor;
    if (!/rgba\\(.*, 0\\)$/.test(colour) && colour !== "transparent") { background = colour; break; }
    node = node.parentElement;
  }
  return [getComputedStyle(el).color, background];
}"""


def assert_buttons_readable_on_hover(page, scope):
    buttons = scope.locator("button:visible, a.btn:visible")
    assert buttons.count() > 0
    for button in buttons.all():
        button.hover()
        page.wait_for_timeout(50)  # no transitions, but let the :hover style apply
        foreground, background = button.evaluate(EFFECTIVE_COLOURS)
        ratio = contrast_ratio(foreground, background)
        assert ratio >= 4.5, f"{button.inner_text()!r}: {foreground} on {background} is {ratio:.1f}:1 on hover"


def test_every_button_of_a_card_and_of_the_connection_page_stays_readable_on_hover(signed_in, live_server, demo,
                                                                                 user, viewport):
    page = signed_in
    card = connect_with_demo_values(page, live_server, demo, "meta")
    assert_buttons_readable_on_hover(page, card)
    # The connect form's Cancel (it used to log "hx-disabled-elt ... returned no matches").
    card.get_by_role("button", name="Connect another account").click()
    expect(card.locator(".connect-form")).to_be_visible()
    assert_buttons_readable_on_hover(page, card.locator(".connect-form"))
    card.get_by_role("button", name="Cancel").click()
    expect(card.locator(".connect-form")).to_have_count(0)

    connection = Connection.objects.get(owner=user, platform__code="meta")
    page.goto(f"{live_server.url}/platforms/connections/{connection.pk}/")
    assert_buttons_readable_on_hover(page, page.locator(".connection-actions"))


def test_the_connection_page_tests_edits_disconnects_and_deletes(signed_in, live_server, demo, user, viewport,
                                                                width):
    page = signed_in
    card = connect_with_demo_values(page, live_server, demo, "meta")
    card.get_by_role("link", name=META["label"]).click()
    expect(page.get_by_role("heading", name=f"Meta · {META['label']}")).to_be_visible()
    expect(page.locator("#connection-syncs")).to_contain_text("No sync sends an audience here yet")

    page.get_by_role("button", name="Test now").click()
    expect(page.locator(".messages")).to_contain_text("Working: reached")

    page.get_by_role("link", name="Edit").click()
    form = page.locator(".connect-form form")
    form.locator("[name=access_token]").fill("EAA-wrong-token-0000")
    form.get_by_role("button", name="Test and save").click()
    expect(page.locator(".connect-form .alert-error")).to_contain_text("Cannot parse access token.")
    expect(page.locator("#connection-syncs")).to_be_visible()  # still the connection's page
    assert fits_the_window(page)
    shot(page, f"connection-edit-error-{width}", readme=False)
    page.locator(".connect-form").get_by_role("link", name="Cancel").click()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disconnect").click()
    expect(page.locator(".messages")).to_contain_text("Disconnected")
    expect(page.get_by_role("link", name="Reconnect")).to_be_visible()
    assert Connection.objects.get(owner=user).status == Connection.Status.DISCONNECTED

    page.once("dialog", lambda dialog: dialog.dismiss())  # a dismissed confirmation deletes nothing
    page.get_by_role("button", name="Delete").click()
    assert Connection.objects.filter(owner=user).exists()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="Platforms")).to_be_visible()
    assert not Connection.objects.filter(owner=user).exists()


def test_the_welcome_steps_are_left_aligned_links_with_their_numbers_beside_them(signed_in, live_server, viewport,
                                                                               width):
    page = signed_in
    shot(page, f"dashboard-welcome-{width}", readme=False)
    steps = page.locator(".welcome-steps li")
    expect(steps).to_have_count(3)
    list_left = box(page.locator(".welcome-steps"))["x"]
    for step in steps.all():
        assert step.evaluate("el => getComputedStyle(el).textAlign") in ("start", "left")
        link = step.locator("a").first
        expect(link).to_be_visible()
        # The text starts right after its number (the list's padding), not half a card away.
        assert box(link)["x"] - list_left < 40
    steps.nth(1).locator("a").click()
    expect(page).to_have_url(re.compile(r"/audiences/new/$"))


def test_the_error_watch_sees_console_errors_and_uncaught_exceptions(signed_in, browser_errors):
    page = signed_in
    page.evaluate("console.error('a deliberate console error')")
    page.evaluate("setTimeout(() => { throw new Error('a deliberate uncaught error') }, 0)")
    page.wait_for_timeout(200)
    assert any("a deliberate console error" in seen for seen in browser_errors.seen)
    assert any("a deliberate uncaught error" in seen for seen in browser_errors.seen)
    browser_errors.allow("a deliberate")  # expected here; any other error still fails this test
    assert browser_errors.unexpected() == []
