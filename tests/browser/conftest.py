"""Browser tests: Playwright drives Debian's Chromium (/usr/bin/chromium, installed by
scripts/ensure_chromium.sh with apt — never a Playwright browser download) against a live
server, a real Celery worker and the fake platforms on loopback.

Every page a test opens is watched: a console error, an uncaught page error or a Content-Security-Policy
violation fails the test (``browser_errors.allow(pattern)`` for the rare one a test expects).
"""

import os
import re
from pathlib import Path

import pytest

from tests.browser.helpers import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make between
# page actions are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} missing: run scripts/ensure_chromium.sh (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


class BrowserErrors:
    """Console errors and uncaught exceptions of every page of a browser context."""

    def __init__(self):
        self.seen: list[str] = []
        self.allowed: list[re.Pattern] = []

    def watch(self, page) -> None:
        def on_console(message):
            if message.type == "error":
                where = message.location.get("url") or page.url
                self.seen.append(f"console error on {page.url} ({where}): {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.seen.append(f"page error on {page.url}: {error}"))

    def allow(self, pattern: str) -> None:
        """Expect errors matching ``pattern`` (a regex) in this test; they do not fail it."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [seen for seen in self.seen if not any(p.search(seen) for p in self.allowed)]


# Reported by the page itself (an init script runs outside the page's Content-Security-Policy): a violation
# becomes a console error, which the watch above fails the test on.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                " at " + (e.sourceFile || document.location.href) + ":" + e.lineNumber);
});
"""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A test whose pages logged a console error or threw fails, even when its own assertions passed."""
    result = yield
    errors = getattr(item, "browser_errors", None)
    if errors is not None and errors.unexpected():
        raise AssertionError("the browser reported errors:\n" + "\n".join(errors.unexpected()))
    return result


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def viewport():
    """The window size of the ``page`` fixture; a test module overrides it (e.g. desktop and phone)."""
    return {"width": 1280, "height": 900}


@pytest.fixture
def browser_errors(request):
    errors = BrowserErrors()
    request.node.browser_errors = errors
    return errors


@pytest.fixture
def page(browser, request, viewport, browser_errors):
    """A fresh browser context per test, every page of it watched for errors; a screenshot is saved when
    the test fails."""
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(15_000)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    context.on("page", browser_errors.watch)
    page = context.new_page()
    yield page
    failed = any(getattr(request.node, f"rep_{when}", None) and getattr(request.node, f"rep_{when}").failed
                 for when in ("setup", "call"))
    if failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture
def platforms(settings):
    """Every fake platform on loopback, the live server's adapters pointed at them."""
    from sandbox.running import running_fake_platforms

    with running_fake_platforms() as fakes:
        for name, value in fakes.settings_overrides().items():
            setattr(settings, name, value)
        yield fakes


@pytest.fixture
def signed_in(page, live_server, user):
    from playwright.sync_api import expect

    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in", re.I)).click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    return page
