"""The sync pages in a real browser, at a 1366-pixel desktop width and a phone's: the audience page (its syncs
first, a preview of the next run, every button on screen), the run page (it keeps up while the run runs; a run
held for review is confirmed there; a platform size that collapses is shown before → after), the dashboard (held
runs first), and deleting an audience (a preview of what goes where, then what became of each platform copy).

Debian's Chromium against a live server, a real Celery worker and the fake platforms on loopback. README
screenshots: `UPDATE_SCREENSHOTS=1` writes them to docs/screenshots/ (the phone ones end in "-phone").
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from playwright.sync_api import expect

from audiences.imports import import_records
from audiences.models import Audience, PlatformDeletion
from credentials.models import Connection
from platforms.models import Platform
from sandbox.base import Fault
from sandbox.credentials import DEMO_CREDENTIALS
from syncs import services as sync_services
from syncs.models import Sync, SyncRun
from tests.browser.helpers import shot
from tests.support.worker import celery_worker, wait_for
from tests.sync.conftest import synthetic_records

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(params=[DESKTOP, PHONE], ids=["desktop", "phone"])
def viewport(request):
    return request.param


@pytest.fixture
def worker(platforms, live_server):
    with celery_worker(concurrency=2, **platforms.environment()) as process:
        yield process


def _name(page, name: str) -> str:
    """The screenshot's name at this width: "audience" on the desktop, "audience-phone" on a phone."""
    return name if page.viewport_size["width"] >= DESKTOP["width"] else f"{name}-phone"


def meta_connection(user, label="Demo ad account") -> Connection:
    demo = DEMO_CREDENTIALS["meta"]
    return Connection.objects.create(
        owner=user, platform=Platform.objects.get(code="meta"), label=label,
        config={"app_id": demo["app_id"], "ad_account_id": demo["ad_account_id"]},
        secrets={"app_secret": demo["app_secret"], "access_token": demo["access_token"]},
    )


def audience_of(user, ranges, *, name="Spring buyers") -> Audience:
    audience = Audience.objects.create(owner=user, name=name, default_country="US", status="ready")
    import_records(audience=audience, records=synthetic_records(ranges), person_key="email")
    audience.refresh_from_db()
    return audience


def reimport(audience, ranges) -> None:
    import_records(audience=audience, records=synthetic_records(ranges), person_key="email")


def on_screen(page, locator) -> bool:
    """Whether the element lies within the window's width (a phone must not scroll sideways to reach it)."""
    box = locator.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]


def badges(page, run_pk: int) -> list[str]:
    """The run's status in the progress card and in its history row, read in one go (one task of the page)."""
    return page.evaluate(
        """(pk) => [document.querySelector('#run-progress .run-status'),
                    document.querySelector('#history-run-' + pk + ' .badge')].map(e => e && e.textContent.trim())""",
        run_pk)


def test_the_audience_page_puts_its_syncs_first_with_a_preview_and_every_button_on_screen(
        signed_in, live_server, platforms, user):
    page = signed_in
    meta = meta_connection(user)
    linkedin_platform = Platform.objects.get(code="linkedin")
    Connection.objects.create(owner=user, platform=linkedin_platform, label="Brand account",
                              config={"ad_account_id": "urn:li:sponsoredAccount:1"}, secrets={"access_token": "li-tok"})
    audience = audience_of(user, [(0, 3_000)])
    sync = sync_services.create_sync(owner=user, audience=audience, connection_id=meta.pk, mode="mirror",
                                     schedule="daily")

    page.goto(f"{live_server.url}/audiences/{audience.pk}/")
    syncs = page.get_by_role("heading", name="Syncs", exact=True)
    coverage = page.get_by_role("heading", name="Match-key coverage")
    expect(syncs).to_be_visible()
    assert syncs.bounding_box()["y"] < coverage.bounding_box()["y"], "the syncs come before the reference tables"

    row = page.locator(f"#sync-{sync.pk}")
    # One cell per column, each under its own header (no selects stacked in a cell spanning two columns).
    assert page.locator("table.syncs thead th").count() == row.locator("> td").count() == 4
    assert row.locator("td[colspan]").count() == 0
    expect(row.get_by_label("Mode")).to_have_value("mirror")
    expect(row.get_by_label("Schedule")).to_have_value("daily")
    expect(row.get_by_label("Hold for review above")).to_have_value("20")

    # The preview loads by itself, after the page: what the next run sends, in people.
    preview = page.locator(f"#sync-preview-{sync.pk}")
    expect(preview).to_contain_text("Will add 3,000", timeout=20_000)
    expect(preview).to_contain_text("remove 0")
    expect(preview).to_contain_text(re.compile(r"[\d,]+ of 3,000 members \(\d+ %\) have a key Meta takes"))
    expect(preview).to_contain_text("held for review before anything is sent")

    expect(page.get_by_role("heading", name="Add a sync")).to_be_visible()
    for button in (row.get_by_role("button", name="Sync now"), row.get_by_role("button", name="Delete"),
                   row.get_by_role("button", name="Save")):
        button.scroll_into_view_if_needed()
        assert on_screen(page, button), f"{button} is off screen at {page.viewport_size['width']} px"

    # The threshold is edited on the row; the browser already refuses one past 100 % (the server too: test_views).
    threshold = row.get_by_label("Hold for review above")
    threshold.fill("150")
    row.get_by_role("button", name="Save").click()
    assert threshold.evaluate("input => !input.validity.valid")
    sync.refresh_from_db()
    assert sync.hold_threshold == 20
    page.locator(f"#sync-{sync.pk}").get_by_label("Hold for review above").fill("10")
    page.locator(f"#sync-{sync.pk}").get_by_role("button", name="Save").click()
    expect(page.get_by_text("Sync to Meta — Demo ad account updated.")).to_be_visible()
    sync.refresh_from_db()
    assert sync.hold_threshold == 10
    expect(page.locator(f"#sync-preview-{sync.pk}")).to_contain_text("more than 10 %", timeout=20_000)
    page.locator("h1").scroll_into_view_if_needed()
    look(page, "#audience-syncs", "audience-syncs")
    shot(page, _name(page, "audience-syncs"))


def test_a_sync_form_shows_only_what_its_schedule_uses_styled_like_its_selects(signed_in, live_server, platforms,
                                                                             user):
    page = signed_in
    meta = meta_connection(user)
    Connection.objects.create(owner=user, platform=Platform.objects.get(code="linkedin"), label="Brand account",
                              config={"ad_account_id": "urn:li:sponsoredAccount:1"}, secrets={"access_token": "t"})
    audience = audience_of(user, [(0, 50)])
    sync = sync_services.create_sync(owner=user, audience=audience, connection_id=meta.pk)
    page.goto(f"{live_server.url}/audiences/{audience.pk}/")

    # A label's name includes its control's value ("On Monday..."): match its start.
    labels = {"At": re.compile(r"^At\b"), "On": re.compile(r"^On\b"), "Time zone": re.compile(r"^Time zone\b")}

    def visible(form):
        return [name for name, label in labels.items() if form.get_by_label(label).is_visible()]

    for form in (page.locator(f"#sync-settings-{sync.pk}"), page.locator("#add-sync")):
        expect(form.get_by_label("Schedule")).to_have_value("")
        assert visible(form) == [], "Manual only uses no time"
        form.get_by_label("Schedule").select_option("hourly")
        assert visible(form) == ["At"]
        expect(form.get_by_text("(its minute, every hour)")).to_be_visible()
        form.get_by_label("Schedule").select_option("daily")
        assert visible(form) == ["At", "Time zone"]
        expect(form.get_by_text("(its minute, every hour)")).to_be_hidden()
        form.get_by_label("Schedule").select_option("weekly")
        assert visible(form) == ["At", "On", "Time zone"]
        # The time and the zone look like the selects next to them.
        looks = form.evaluate("""form => ['select[name=schedule]', 'input[name=schedule_time]',
            'input[name=schedule_timezone]'].map(s => { const c = getComputedStyle(form.querySelector(s));
            return [c.borderTopWidth, c.borderTopStyle, c.borderTopColor, c.borderRadius, c.paddingTop, c.fontSize]
                .join(' '); })""")
        assert looks[1] == looks[0] and looks[2] == looks[0], looks
        form.get_by_label("Schedule").select_option("")
        assert visible(form) == []

    settings_form = page.locator(f"#sync-settings-{sync.pk}")
    settings_form.get_by_label("Schedule").select_option("weekly")
    settings_form.get_by_label(labels["On"]).select_option(label="Wednesday")
    settings_form.get_by_label(labels["At"]).fill("07:45")
    settings_form.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Sync to Meta — Demo ad account updated.")).to_be_visible()
    sync.refresh_from_db()
    assert (sync.schedule, sync.schedule_weekday, f"{sync.schedule_time:%H:%M}") == ("weekly", 2, "07:45")
    # The panel comes back over htmx with the saved schedule's fields, and the select keeps driving them.
    settings_form = page.locator(f"#sync-settings-{sync.pk}")
    assert visible(settings_form) == ["At", "On", "Time zone"]
    settings_form.get_by_label("Schedule").select_option("daily")
    assert visible(settings_form) == ["At", "Time zone"]


def test_the_run_page_keeps_up_and_a_run_held_for_review_is_confirmed_there(
        signed_in, live_server, platforms, worker, user):
    page = signed_in
    meta = meta_connection(user)
    audience = audience_of(user, [(0, 3_000)])
    sync = sync_services.create_sync(owner=user, audience=audience, connection_id=meta.pk, mode="mirror")
    fake = platforms.http["meta"]
    fake.inject(Fault(delay=4, method="POST", path_regex=r"/users$"))  # the add batch takes a while

    page.goto(f"{live_server.url}/audiences/{audience.pk}/")
    expect(page.locator(f"#sync-preview-{sync.pk}")).to_contain_text("Will add 3,000", timeout=20_000)
    page.locator(f"#sync-{sync.pk}").get_by_role("button", name="Sync now").click()
    expect(page.locator("#run-progress .run-status")).to_have_text("Running", timeout=30_000)
    run = SyncRun.objects.get(sync=sync)
    # While it runs, its history row says so too, and the platform audience id is there without a reload.
    assert badges(page, run.pk) == ["Running", "Running"]
    # "Running" shows before the platform audience is created: wait for the id, then check it is the sync's.
    audience_code = page.locator("#run-progress .platform-audience code")
    expect(audience_code).to_have_text(re.compile(r"\S+"), timeout=30_000)
    sync.refresh_from_db()
    assert audience_code.inner_text() == sync.platform_audience_id
    expect(page.locator("#run-progress .run-status")).to_have_text("Succeeded", timeout=60_000)
    expect(page.locator(f"#history-run-{run.pk} .badge")).to_have_text("Succeeded")
    expect(page.locator("#run-progress .sent")).to_have_text("3,000 of 3,000")
    expect(page.locator(f"#history-run-{run.pk}")).to_contain_text("just now")
    assert "0 minutes ago" not in page.content()

    # A thousand of the 3,000 leave: in mirror mode the next run would remove a third of what Meta holds.
    reimport(audience, [(0, 2_000)])
    page.goto(f"{live_server.url}/audiences/{audience.pk}/")
    preview = page.locator(f"#sync-preview-{sync.pk}")
    expect(preview).to_contain_text("1,000 people left the audience: removed from Meta (mirror mode).",
                                    timeout=20_000)
    expect(preview).to_contain_text("This run would be held for review: it removes 1,000 of the 3,000 people "
                                    "Meta holds (33.3 %)")
    look(page, f"#sync-{sync.pk}", "sync-row-held")
    page.locator(f"#sync-{sync.pk}").get_by_role("button", name="Sync now").click()
    expect(page.locator("#run-progress .run-status")).to_have_text("Held for review", timeout=30_000)
    held = SyncRun.objects.filter(sync=sync).latest("created_at")
    assert held.status == SyncRun.Status.HELD
    expect(page.locator(".held-removes")).to_have_text("1,000 of the 3,000 people Meta holds (33.3 %)")
    expect(page.locator(f"#history-run-{held.pk} .badge")).to_have_text("Held for review")
    confirm = page.get_by_role("button", name="Confirm and send")
    assert on_screen(page, confirm) and on_screen(page, page.get_by_role("button", name="Cancel this run"))
    look(page, "#run-progress", "run-held")
    shot(page, _name(page, "sync-run-held"))

    # The dashboard lists the held run first.
    page.goto(f"{live_server.url}/")
    first = page.locator(".attention-list > li").first
    expect(first).to_contain_text("Held for review: Spring buyers → Meta")
    expect(first).to_contain_text("would remove 1,000 of the 3,000 people Meta holds (33.3 %)")
    shot(page, _name(page, "dashboard-held"))
    first.get_by_role("link", name=re.compile("Review")).click()

    page.get_by_role("button", name="Confirm and send").click()
    expect(page.locator("#run-progress .run-status")).to_have_text("Succeeded", timeout=60_000)
    expect(page.locator("#run-progress .removed")).to_have_text("1,000 of 1,000")
    assert len(fake.audience_members(sync.platform_audience_id)) == 2_000
    # Two runs reported figures: the charts have axes, dates and values, one scale each.
    expect(page.locator("#chart-size svg .chart-tick").first).to_be_visible(timeout=10_000)
    expect(page.locator("#chart-size .chart-summary")).to_contain_text(re.compile(r"Last run: [\d,]+ → [\d,]+, −\d"))
    expect(page.locator("#chart-match_rate")).to_contain_text("Match rate")
    page.locator("#run-history").scroll_into_view_if_needed()
    look(page, "#run-history", "run-history")
    look(page, "#run-progress", "run-progress")
    shot(page, _name(page, "sync-run-history"))


def test_a_platform_size_that_collapses_during_a_run_needs_attention(signed_in, live_server, platforms, worker,
                                                                     user, viewport):
    page = signed_in
    meta = meta_connection(user)
    audience = audience_of(user, [(0, 3_000)])
    sync = sync_services.create_sync(owner=user, audience=audience, connection_id=meta.pk, mode="mirror")
    fake = platforms.http["meta"]
    page.goto(f"{live_server.url}/audiences/{audience.pk}/")
    page.locator(f"#sync-{sync.pk}").get_by_role("button", name="Sync now").click()
    expect(page.locator("#run-progress .run-status")).to_have_text("Succeeded", timeout=60_000)

    # Fifty join; while their batch is on the wire, somebody empties the audience in Meta's own tools.
    reimport(audience, [(0, 3_050)])
    fake.inject(Fault(delay=4, method="POST", path_regex=r"/users$"))
    sync.refresh_from_db()

    def empty_it_on_meta():
        wait_for(lambda: SyncRun.objects.filter(sync=sync, status="running", size_before__isnull=False).exists(),
                 timeout=60, message="the second run to be planned")
        time.sleep(0.5)
        with fake.lock:
            for member in list(fake.members[sync.platform_audience_id].members):
                fake.members[sync.platform_audience_id]._discard(member)

    emptier = threading.Thread(target=empty_it_on_meta)
    emptier.start()
    page.goto(f"{live_server.url}/audiences/{audience.pk}/")
    page.locator(f"#sync-{sync.pk}").get_by_role("button", name="Sync now").click()
    expect(page.locator("#run-progress .run-status")).to_have_text("Needs attention", timeout=60_000)
    emptier.join()
    run = SyncRun.objects.filter(sync=sync).latest("created_at")
    assert run.status == SyncRun.Status.ATTENTION
    change = page.locator("#run-progress .size-change")
    expect(change).to_contain_text(f"{run.size_before:,} → {run.audience_size:,}, −")
    expect(page.locator("#run-progress .run-error")).to_contain_text("more than this run explains")
    shot(page, _name(page, "sync-run-attention"))

    page.goto(f"{live_server.url}/")
    item = page.locator(".attention-list > li", has_text="Sync needs attention")
    expect(item).to_contain_text(f"Meta reports {run.size_before:,} → {run.audience_size:,}, −")


def test_deleting_an_audience_previews_what_goes_where_then_says_what_became_of_each_copy(
        signed_in, live_server, platforms, worker, user, browser_errors):
    page = signed_in
    meta = meta_connection(user)
    linkedin = Connection.objects.create(owner=user, platform=Platform.objects.get(code="linkedin"),
                                         label="Brand account", config={}, secrets={"access_token": "li-tok"},
                                         status=Connection.Status.DISCONNECTED)
    audience = audience_of(user, [(0, 3_000)])
    sync = sync_services.create_sync(owner=user, audience=audience, connection_id=meta.pk, schedule="daily")
    page.goto(f"{live_server.url}/audiences/{audience.pk}/")
    page.locator(f"#sync-{sync.pk}").get_by_role("button", name="Sync now").click()
    expect(page.locator("#run-progress .run-status")).to_have_text("Succeeded", timeout=60_000)
    sync.refresh_from_db()
    # An older sync to LinkedIn made a copy there before its connection was disconnected.
    Sync.objects.create(owner=user, audience=audience, connection=linkedin, platform_audience_id="urn:li:dmpSegment:77")
    fake = platforms.http["meta"]
    assert sync.platform_audience_id in fake.audiences

    page.goto(f"{live_server.url}/audiences/{audience.pk}/")
    page.get_by_label(re.compile("also delete it on", re.I)).check()
    page.get_by_role("button", name="Delete audience…").click()
    expect(page.get_by_role("heading", name="Delete “Spring buyers”?")).to_be_visible()
    here = page.locator(".delete-here")
    expect(here).to_contain_text("The audience and its 3,000 members")
    expect(here).to_contain_text("the schedule (daily to Meta · Demo ad account) stops")
    meta_row = page.locator("table.delete-platforms tr", has_text="Meta · Demo ad account")
    expect(meta_row).to_contain_text("Deleted on Meta")
    expect(meta_row).to_contain_text(sync.platform_audience_id)
    linkedin_row = page.locator("table.delete-platforms tr", has_text="LinkedIn · Brand account")
    expect(linkedin_row).to_contain_text("Cannot be deleted from here")
    expect(linkedin_row).to_contain_text("is disconnected")
    confirm = page.get_by_role("button", name="Delete here and on Meta · Demo ad account")
    assert on_screen(page, confirm)
    shot(page, _name(page, "delete-preview"))

    # The other choice is previewed too, and nothing was deleted by looking.
    page.get_by_role("link", name="Keep the platform copies instead").click()
    expect(page.locator("table.delete-platforms tr", has_text="Meta")).to_contain_text("Stays on Meta")
    expect(page.get_by_role("button", name="Delete here only")).to_be_visible()
    assert Audience.objects.get(pk=audience.pk).status == Audience.Status.READY
    page.get_by_role("link", name="Delete it on the platforms too").click()

    page.get_by_role("button", name="Delete here and on Meta · Demo ad account").click()
    expect(page.get_by_text(re.compile("Deleted the audience “Spring buyers”. Deleting it on Meta · Demo ad account "
                                       "in the background."))).to_be_visible()
    deleted = page.locator("#deleted-audiences")
    # The list re-reads itself until the worker has deleted the Meta copy.
    expect(deleted.locator(".copy-fate", has_text="Meta · Demo ad account")).to_contain_text("Deleted", timeout=60_000)
    expect(deleted.locator(".copy-fate", has_text="LinkedIn · Brand account")).to_contain_text("Not deleted")
    assert sync.platform_audience_id not in fake.audiences
    assert PlatformDeletion.objects.get(destination="Meta · Demo ad account").status == "deleted"
    shot(page, _name(page, "deleted-audiences"))
    browser_errors.allow(r"status of 404")  # nothing expected, but the audience's own URLs are gone on purpose
    wait_for(lambda: not Audience.objects.filter(pk=audience.pk).exists(), timeout=60,
             message="the worker to purge the audience")
    # The copy that could not be deleted stays on the dashboard until it is dealt with.
    page.goto(f"{live_server.url}/")
    expect(page.locator(".attention-list > li", has_text="Not deleted")).to_contain_text("LinkedIn · Brand account")


def look(page, selector: str, name: str) -> None:
    """For a closer look while working on a page: one element's screenshot in test-artifacts/ (LOOK=1 only)."""
    import os

    from tests.browser.helpers import ROOT

    if os.environ.get("LOOK"):
        folder = ROOT / "test-artifacts" / "look"
        folder.mkdir(parents=True, exist_ok=True)
        page.locator(selector).first.screenshot(path=str(folder / f"{_name(page, name)}.png"))
