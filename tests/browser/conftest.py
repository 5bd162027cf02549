"""Browser tests: Playwright drives Debian's Chromium (/usr/bin/chromium, installed by
scripts/ensure_chromium.sh with apt — never a Playwright browser download) against a live
server, a real Celery worker and the fake platforms on loopback."""

import os
from pathlib import Path

import pytest

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


# Reported by the page itself (an init script runs outside the page's Content-Security-Policy).
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                " at " + (e.sourceFile || document.location.href) + ":" + e.lineNumber);
});
"""


def _expected(message, deliberate: set[str]) -> bool:
    """A failed load the test asked for itself (e.g. checking that a deleted audience's page is a 404)."""
    text = message.text
    url = (message.location or {}).get("url", "")
    return text.startswith("Failed to load resource: the server responded with a status of 404") and url in deliberate


@pytest.fixture
def page(browser, request):
    """A fresh browser context per test; a screenshot is saved when the test fails. Every page the test opens
    must load and run without a console error or a Content-Security-Policy violation."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    problems: list[str] = []
    deliberate: set[str] = set()
    page.on("console", lambda message: message.type == "error" and problems.append(message))
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on("response", lambda response: response.status == 404 and response.request.is_navigation_request()
            and deliberate.add(response.url))
    yield page
    failed = any(getattr(request.node, f"rep_{when}", None) and getattr(request.node, f"rep_{when}").failed
                 for when in ("setup", "call"))
    if failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    if not failed:
        unexpected = [p if isinstance(p, str) else f"{p.text} ({(p.location or {}).get('url', '')})"
                      for p in problems if isinstance(p, str) or not _expected(p, deliberate)]
        assert unexpected == [], "console errors or CSP violations on the pages this test opened"
