"""The main flows in a real browser: Debian's Chromium against a live server, a real Celery worker
and every fake platform on loopback.

Sign in; connect Meta with a wrong then a right token; upload the sample CSV, fix a column mapping,
import and read the rejection report; sync to two platforms and watch both progress bars reach 100 %;
disconnect a platform. README screenshots: `UPDATE_SCREENSHOTS=1 make test` writes them to docs/screenshots/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from audiences.models import Audience
from credentials.models import Connection
from sandbox.credentials import DEMO_CREDENTIALS
from syncs.models import Sync, SyncRun
from tests.browser.helpers import shot as _shot
from tests.support.worker import celery_worker, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "audiences" / "sample_data" / "sample-customers.csv"


@pytest.fixture
def worker(platforms, live_server):
    with celery_worker(concurrency=2, **platforms.environment()) as process:
        yield process


def _open_connect_form(page, live_server, code):
    page.goto(f"{live_server.url}/platforms/")
    card = page.locator(f"#platform-{code}")
    card.get_by_role("button", name=re.compile("connect", re.I)).first.click()
    form = card.locator("form")
    expect(form).to_be_visible()
    return card, form


def _fill_credentials(form, values):
    for field, value in values.items():
        locator = form.locator(f"[name='{field}']")
        if locator.count() == 0:
            continue
        if locator.evaluate("el => el.tagName") == "SELECT":
            locator.select_option(value)
        else:
            locator.fill(value)


def connect(page, live_server, code, platforms, **overrides):
    card, form = _open_connect_form(page, live_server, code)
    values = dict(DEMO_CREDENTIALS[code], **overrides)
    if code == "netflix":
        values["base_url"] = platforms.netflix_base_url()
    _fill_credentials(form, values)
    form.get_by_role("button", name=re.compile("connect|save", re.I)).click()
    return card


def test_sign_in_and_connect_meta_with_a_wrong_then_a_right_token(signed_in, live_server, platforms, user):
    page = signed_in
    card = connect(page, live_server, "meta", platforms, access_token="EAA-wrong-token")
    expect(card.locator(".errorlist, .alert-error").first).to_contain_text(re.compile("token", re.I))
    assert not Connection.objects.filter(owner=user).exists()

    card.locator("[name='access_token']").fill(DEMO_CREDENTIALS["meta"]["access_token"])
    card.locator("[name='app_secret']").fill(DEMO_CREDENTIALS["meta"]["app_secret"])
    card.get_by_role("button", name=re.compile("connect|save", re.I)).click()
    expect(page.locator("#platform-meta .badge-active").first).to_be_visible()
    connection = Connection.objects.get(owner=user, platform__code="meta")
    assert connection.status == Connection.Status.ACTIVE
    assert DEMO_CREDENTIALS["meta"]["access_token"] not in page.content()
    _shot(page, "platforms")


def _import_sample(page, live_server, name="Sample customers"):
    page.goto(f"{live_server.url}/audiences/")
    page.get_by_role("link", name=re.compile("new audience|upload", re.I)).first.click()
    page.get_by_label(re.compile("^name", re.I)).fill(name)
    page.get_by_label(re.compile("default country", re.I)).select_option("US")
    page.locator("input[type=file]").set_input_files(str(SAMPLE))
    page.get_by_role("button", name=re.compile("upload|continue", re.I)).first.click()
    # Mapping: "Cust Ref" is not recognised automatically; map it to the external id by hand.
    mapping = page.get_by_label("Column Cust Ref")
    expect(mapping).to_be_visible()
    mapping.select_option("external_id")
    page.get_by_role("button", name=re.compile("import", re.I)).first.click()


def test_upload_sample_fix_mapping_import_and_see_rejections(signed_in, live_server, worker, user):
    page = signed_in
    _import_sample(page, live_server)
    expect(page.get_by_text(re.compile(r"rejected", re.I)).first).to_be_visible(timeout=60_000)
    expect(page.locator(".badge-ready, .badge-succeeded").first).to_be_visible(timeout=60_000)
    audience = Audience.objects.get(owner=user)
    assert audience.member_count > 2_500
    assert audience.key_coverage.get("external_id", 0) > 2_500
    expect(page.get_by_text(re.compile(r"row \d+", re.I)).first).to_be_visible()
    _shot(page, "audience")


def test_sync_to_two_platforms_reaches_100_percent_then_disconnect(signed_in, live_server, worker, platforms, user,
                                                                   browser_errors):
    page = signed_in
    connect(page, live_server, "meta", platforms)
    expect(page.locator("#platform-meta .badge-active").first).to_be_visible()
    connect(page, live_server, "linkedin", platforms)
    expect(page.locator("#platform-linkedin .badge-active").first).to_be_visible()

    _import_sample(page, live_server, name="Newsletter subscribers")
    expect(page.locator(".badge-ready, .badge-succeeded").first).to_be_visible(timeout=60_000)
    audience_url = page.url

    for synced, code in enumerate(("meta", "linkedin"), start=1):
        page.goto(audience_url)
        add_sync = page.locator("form.sync-add, #add-sync form").first
        expect(add_sync).to_be_visible()
        connection = Connection.objects.get(owner=user, platform__code=code)
        add_sync.locator("select[name='connection']").select_option(str(connection.pk))
        add_sync.locator("select[name='mode']").select_option("mirror")
        add_sync.get_by_role("button", name=re.compile("add sync|sync", re.I)).click()
        expect(page.locator("#audience-syncs tbody tr")).to_have_count(synced)
        sync = Sync.objects.get(audience__owner=user, connection=connection)
        page.locator(f"#sync-{sync.pk}").get_by_role("button", name=re.compile("sync now", re.I)).click()
        expect(page.locator("#run-progress progress")).to_be_visible()
        expect(page.locator("#run-progress").get_by_text("100 %").first).to_be_visible(timeout=90_000)
        expect(page.locator("#run-history tbody tr").first).to_contain_text("Succeeded")

    runs = SyncRun.objects.filter(sync__audience__owner=user)
    assert runs.count() == 2 and all(r.status == SyncRun.Status.SUCCEEDED for r in runs)
    meta_sync = runs.get(sync__connection__platform__code="meta").sync
    on_meta = platforms.http["meta"].audience_members(meta_sync.platform_audience_id)
    assert len(on_meta) == meta_sync.audience.member_count
    _shot(page, "sync-run")

    page.goto(f"{live_server.url}/platforms/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#platform-linkedin").get_by_role("button", name=re.compile("disconnect", re.I)).first.click()
    expect(page.locator("#platform-linkedin .badge-disconnected").first).to_be_visible()
    assert Connection.objects.get(owner=user, platform__code="linkedin").status == Connection.Status.DISCONNECTED

    # The dashboard puts what needs attention first: the disconnected LinkedIn account's sync.
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_text("Newsletter subscribers").first).to_be_visible()
    _shot(page, "dashboard")

    # Deleting the audience, on Meta too: gone from the app at once; the worker deletes the Meta copy and then
    # the audience's rows (LinkedIn is disconnected, so its copy stays).
    audience = meta_sync.audience
    page.goto(audience_url)
    page.get_by_label(re.compile("also delete it on", re.I)).check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete audience").click()
    # The confirmation previews what goes where (tests/browser/test_sync_pages.py looks at it closely).
    page.get_by_role("button", name=re.compile("^Delete here and on Meta")).click()
    expect(page.get_by_text(re.compile("Deleted the audience")).first).to_be_visible()
    browser_errors.allow(re.escape(f"on {audience_url}") + ".*status of 404")  # the deleted audience, on purpose
    assert page.goto(audience_url).status == 404
    wait_for(lambda: meta_sync.platform_audience_id not in platforms.http["meta"].audiences, timeout=60,
             message="the worker to delete the audience on Meta")
    wait_for(lambda: not Audience.objects.filter(pk=audience.pk).exists(), timeout=60,
             message="the worker to purge the audience")
