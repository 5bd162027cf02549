"""Issue 13's scenario, walked in Chromium as a marketer walks it, every step through the UI where there is one
(only the Google connection is made by the credential services, as the connect form makes it):

1. a new audience from the bundled sample file ("Use the sample file"; Cust Ref mapped to the external id);
2. a sync to Google (Data Manager) in add mode, Sync now, Succeeded: the fake list holds the audience;
3. the same file re-imported with the phone column set to "ignore": the mapping page warns that a column mapped last
   time is not mapped now, with the members it changes, before anything is imported; imported anyway;
4. the sync switched to mirror: the preview removes nobody, Sync now succeeds and Google still holds the same people
   (by email hash); its removes carry only the dropped phones, never an identifier a current member holds;
5. a smaller export (40 % of the people gone, messy as real exports are): the preview says the run would be held,
   Sync now holds it for review, Cancel on the run page sends nothing: Google holds exactly what it held before.

Along the way the pages must fit: Google's long list name must not push the Sync now button off a desktop row, the
run history shows every column at 1366 px, and a run card's figures are readable at phone width.

Debian's Chromium against a live server, a real Celery worker and the fake platforms on loopback. Screenshots are
named scenario-*; `UPDATE_SCREENSHOTS=1` writes them to docs/screenshots/ (the phone ones end in "-phone").
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from audiences.models import Audience, ImportJob
from audiences.storage import all_records
from credentials.models import Connection
from credentials.services import connect
from platforms.adapters import get_adapter_class
from platforms.matchkeys import platform_values
from platforms.models import Platform
from sandbox.credentials import DEMO_CREDENTIALS
from syncs.models import Sync, SyncRun
from tests.browser.helpers import shot
from tests.support.worker import celery_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SAMPLE = Path(__file__).resolve().parents[2] / "audiences" / "sample_data" / "sample-customers.csv"
GOOGLE = "Google (Data Manager API)"


@pytest.fixture(params=[DESKTOP, PHONE], ids=["desktop", "phone"])
def viewport(request):
    return request.param


@pytest.fixture
def worker(platforms, live_server):
    with celery_worker(concurrency=2, **platforms.environment()) as process:
        yield process


def _name(page, name: str) -> str:
    return name if page.viewport_size["width"] >= DESKTOP["width"] else f"{name}-phone"


def google_connection(user) -> Connection:
    """The demo Google Data Manager account, connected as the connect form connects it (a real validation call to
    the fake first)."""
    form = get_adapter_class("google_dm").credentials_form(data=dict(DEMO_CREDENTIALS["google_dm"]))
    assert form.is_valid(), form.errors
    label, config, secrets = form.split()
    connection = connect(owner=user, platform=Platform.objects.get(code="google_dm"), label=label, config=config,
                         secrets=secrets, actor=user)
    assert connection.status == Connection.Status.ACTIVE
    return connection


def smaller_export(path: Path, *, keep: float = 0.6) -> int:
    """The sample file as a CRM would export it a month later with 40 % of the people gone: a UTF-8 byte order mark,
    CRLF line ends, every field quoted, emails upper-cased or padded, a blank line. Returns the rows kept."""
    with SAMPLE.open(newline="", encoding="utf-8") as sample:
        header, *rows = list(csv.reader(sample))
    kept = [row for i, row in enumerate(rows) if (i * 37) % 100 < keep * 100]
    email = header.index("E-mail")
    for i, row in enumerate(kept):
        if i % 7 == 0:
            row[email] = f"  {row[email].strip().upper()}  "
        elif i % 11 == 0:
            row[email] = row[email].strip().lower()
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(kept[: len(kept) // 2])
    out.write("\r\n")  # an empty line half-way, as spreadsheets leave them
    writer.writerows(kept[len(kept) // 2:])
    path.write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode("utf-8"))
    return len(kept)


def held_by_google(platforms, sync: Sync) -> tuple[set[frozenset], set[str]]:
    """What the fake Google list holds: its records (sets of identifiers) and their email hashes."""
    sync.refresh_from_db()
    fake = platforms.datamanager
    return (set(fake.list_members(sync.platform_audience_id)),
            fake.list_identifiers(sync.platform_audience_id, "email_address"))


def members_emails(audience: Audience) -> set[str]:
    """The email hashes of the audience's current members, in the form Google receives them."""
    values = (platform_values("google_dm", stored) for _, _, stored in all_records(audience.pk))
    return {v["email"] for v in values if "email" in v}


def sent_since(platforms, mark: int) -> list[tuple[str, set[tuple[str, str]]]]:
    """The member calls Google received since call number ``mark``, in order: (method, its email and phone
    identifiers)."""
    out = []
    for call in platforms.datamanager.calls[mark:]:
        if call.method in ("IngestAudienceMembers", "RemoveAudienceMembers"):
            out.append((call.method, {(kind, getattr(i, kind)) for m in call.request.audience_members
                                      for i in m.user_data.user_identifiers
                                      for kind in ("email_address", "phone_number") if kind in i}))
    return out


def wait_for_import(page, audience_url: str) -> None:
    """The audience page follows the import and reloads itself when it ends."""
    expect(page).to_have_url(audience_url, timeout=15_000)
    expect(page.locator(".import-progress .badge").first).to_have_text("Imported", timeout=90_000)
    expect(page.locator("h1 + .badge")).to_have_text("Ready")


def on_screen(page, locator) -> bool:
    """Whether the element lies within the window's width, once scrolled to."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]


def syncs_fit(page) -> bool:
    """The audience page's syncs table needs no sideways scrolling (its wrapper scrolls when a cell is too wide)."""
    return page.evaluate("(w => w.scrollWidth <= w.clientWidth)(document.querySelector('#audience-syncs .table-wrap'))")


def history_fits(page) -> bool:
    """At desktop width the run history shows every column; on a phone it scrolls sideways by design."""
    if page.viewport_size["width"] < DESKTOP["width"]:
        return True
    return page.evaluate("(w => w.scrollWidth <= w.clientWidth)(document.querySelector('#run-history .table-wrap'))")


def run_figures_readable(page) -> bool:
    """Every figure of the run card has room to be read (not squeezed to a letter a line by a long label)."""
    narrowest = page.evaluate("Math.min(...[...document.querySelectorAll('#run-progress dl.kv dd')]"
                              ".map(dd => dd.getBoundingClientRect().width))")
    return narrowest >= 0.3 * page.viewport_size["width"]


def sync_now(page, sync: Sync) -> SyncRun:
    """Sync now on the audience page: the run page opens; returns the new run."""
    before = set(SyncRun.objects.filter(sync=sync).values_list("pk", flat=True))
    page.locator(f"#sync-{sync.pk}").get_by_role("button", name="Sync now").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/"))
    return SyncRun.objects.filter(sync=sync).exclude(pk__in=before).get()


def test_people_not_rows_reimport_mirror_hold_and_cancel(signed_in, live_server, platforms, worker, user, tmp_path):
    page = signed_in
    google = google_connection(user)

    # 1. A new audience from the bundled sample file.
    page.goto(f"{live_server.url}/audiences/new/")
    page.get_by_label(re.compile("^name", re.I)).fill("Spring newsletter")
    page.get_by_label(re.compile("default country", re.I)).select_option("US")
    page.get_by_role("button", name="Use the sample file").click()
    expect(page.get_by_role("heading", name="Which column holds what?")).to_be_visible()
    expect(page.get_by_label("Column Mobile Number")).to_have_value("phone")
    page.get_by_label("Column Cust Ref").select_option("external_id")
    shot(page, _name(page, "scenario-1-sample-mapping"))
    page.get_by_role("button", name="Import", exact=True).click()
    audience = Audience.objects.get(owner=user)
    audience_url = f"{live_server.url}/audiences/{audience.pk}/"
    wait_for_import(page, audience_url)
    audience.refresh_from_db()
    members = audience.member_count
    with_phone = audience.key_coverage["phone"]
    assert members > 2_500 and with_phone > 2_000

    # 2. A sync to Google in add mode; Sync now; Succeeded.
    add = page.locator("#add-sync")
    add.get_by_label("Connection").select_option(label=f"{GOOGLE} · {google.label}")
    add.get_by_label("Mode").select_option("add")
    add.get_by_role("button", name="Add sync").click()
    expect(page.locator("#audience-syncs tbody tr")).to_have_count(1)
    sync = Sync.objects.get(audience=audience)
    assert sync.mode == Sync.Mode.ADD and sync.connection == google
    preview = page.locator(f"#sync-preview-{sync.pk}")
    expect(preview).to_contain_text(f"Will add {members:,}", timeout=20_000)
    expect(preview).to_contain_text("remove 0")
    # A few members have no key Google takes: the share says so rather than rounding up to all of them.
    expect(preview.locator(".preview-usable")).to_have_text(
        re.compile(rf"[\d,]+ of {members:,} members \((\d\d?) %\) have a key {re.escape(GOOGLE)} takes\."))
    detail = preview.locator(".preview-adds-detail")
    skipped_before = detail.text_content() if detail.count() else None
    shot(page, _name(page, "scenario-2-add-sync"))
    first = sync_now(page, sync)
    expect(page.locator("#run-progress .run-status")).to_have_text("Succeeded", timeout=90_000)
    first.refresh_from_db()
    assert first.status == SyncRun.Status.SUCCEEDED, first.error_message
    if first.rejected:  # the members without a key Google takes
        expect(page.locator("#run-progress .rejected")).to_contain_text(f"{first.rejected:,} (no key {GOOGLE} takes")
    # The preview said so before the run: "Will add N (R of them have no key Google takes and will be rejected)".
    assert skipped_before == (f"({first.rejected:,} of them have no key {GOOGLE} takes and will be rejected)"
                              if first.rejected else None)
    records, emails = held_by_google(platforms, sync)
    assert emails == members_emails(audience)
    assert history_fits(page), "the run history scrolls sideways at desktop width"
    assert run_figures_readable(page)
    shot(page, _name(page, "scenario-2-add-run"))

    # Then the preview says what Google was sent and, apart, the size it reported (not one blurred figure).
    page.goto(audience_url)
    preview = page.locator(f"#sync-preview-{sync.pk}")
    expect(preview.locator(".preview-summary")).to_contain_text(
        f"Nothing to send: {GOOGLE} has the {members - first.rejected:,} people sent to it", timeout=20_000)
    if first.audience_size is not None:
        expect(preview.locator(".preview-summary")).to_contain_text(f"{first.audience_size:,}")

    # 3. The same file again, the phone column set to "ignore": warned before anything is imported.
    page.goto(audience_url)
    page.get_by_role("link", name="Replace members with a new file").click()
    page.get_by_role("button", name="Use the sample file").click()
    expect(page.get_by_role("heading", name="Which column holds what?")).to_be_visible()
    # The last mapping is remembered, Cust Ref included.
    expect(page.get_by_label("Column Cust Ref")).to_have_value("external_id")
    page.get_by_label("Column Mobile Number").select_option("")
    warning = page.locator(".missing-columns")
    expect(warning).to_contain_text("Mapped last time, not now")
    expect(warning).to_contain_text(f"“Mobile Number” (Phone) is not mapped: the {with_phone:,} members with phone "
                                    "lose it with this import")
    job = audience.imports.latest("created_at")
    assert job.status == ImportJob.Status.UPLOADED  # nothing imported by looking
    assert audience.imports.count() == 2
    warning.scroll_into_view_if_needed()
    shot(page, _name(page, "scenario-3-reimport-warning"))
    page.get_by_role("button", name="Import", exact=True).click()
    wait_for_import(page, audience_url)
    audience.refresh_from_db()
    assert audience.member_count == members  # the same people
    assert audience.key_coverage.get("phone", 0) == 0

    # The Google list's long resource name is on the row now: the row still fits, Sync now on screen.
    row = page.locator(f"#sync-{sync.pk}")
    assert syncs_fit(page), "the syncs table scrolls sideways: the Next run column is cut off"
    assert on_screen(page, row.get_by_role("button", name="Sync now"))

    # 4. Mirror: nobody left, so the preview removes nobody and the run leaves Google holding the same people.
    row.get_by_label("Mode").select_option("mirror")
    row.get_by_role("button", name="Save").click()
    expect(page.get_by_text(re.compile(r"Sync to .* updated\."))).to_be_visible()
    sync.refresh_from_db()
    assert sync.mode == Sync.Mode.MIRROR
    preview = page.locator(f"#sync-preview-{sync.pk}")
    expect(preview).to_contain_text("remove 0", timeout=20_000)
    expect(preview).not_to_contain_text("would be held")
    expect(preview).not_to_contain_text("left the audience")
    page.locator(f"#sync-{sync.pk}").scroll_into_view_if_needed()
    shot(page, _name(page, "scenario-4-mirror-preview"))
    mark = len(platforms.datamanager.calls)
    mirror = sync_now(page, sync)
    expect(page.locator("#run-progress .run-status")).to_have_text("Succeeded", timeout=90_000)
    mirror.refresh_from_db()
    assert mirror.status == SyncRun.Status.SUCCEEDED, mirror.error_message
    after_mirror, emails_after_mirror = held_by_google(platforms, sync)
    assert emails_after_mirror == emails, "the mirror run removed people who are still in the audience"
    assert emails_after_mirror == members_emails(audience)
    # The rule the issue sets: a remove never carries an identifier a current member holds. Here the removes carry
    # the dropped phones only, and go before the re-sent records (Google removes whoever matches any of them).
    calls = sent_since(platforms, mark)
    assert [method for method, _ in calls] == ["RemoveAudienceMembers", "IngestAudienceMembers"]
    removed = calls[0][1]
    assert removed and {kind for kind, _ in removed} == {"phone_number"}
    assert not {value for _, value in removed} & members_emails(audience)
    # Mirror: the phones nobody holds any more are gone from Google too (the people stay, by their email).
    assert not platforms.datamanager.list_identifiers(sync.platform_audience_id, "phone_number")
    assert len(after_mirror) >= len(emails)
    assert run_figures_readable(page)
    shot(page, _name(page, "scenario-4-mirror-run"))

    # 5. A smaller export: 40 % gone. The preview says it would be held; Sync now holds it; Cancel sends nothing.
    export = tmp_path / "crm-export-2026-12-01.csv"
    kept = smaller_export(export)
    page.goto(audience_url)
    page.get_by_role("link", name="Replace members with a new file").click()
    page.locator("input[type=file]").set_input_files(str(export))
    page.get_by_role("button", name="Upload and continue").click()
    expect(page.get_by_role("heading", name="Which column holds what?")).to_be_visible()
    expect(page.get_by_label("Column Mobile Number")).to_have_value("")  # as last time
    expect(page.locator(".missing-columns")).to_have_count(0)
    page.get_by_role("button", name="Import", exact=True).click()
    wait_for_import(page, audience_url)
    audience.refresh_from_db()
    left = members - audience.member_count
    assert audience.member_count < kept and left > members * 0.3, (members, kept, audience.member_count)
    preview = page.locator(f"#sync-preview-{sync.pk}")
    expect(preview).to_contain_text(f"{left:,} people left the audience: removed from {GOOGLE} (mirror mode).",
                                    timeout=20_000)
    expect(preview.locator(".preview-hold")).to_contain_text(
        re.compile(rf"This run would be held for review: it removes {left:,} of the [\d,]+ people {re.escape(GOOGLE)} "
                   r"holds \(\d+\.\d %\), more than this sync's 20 % threshold"))
    page.locator(f"#sync-{sync.pk}").scroll_into_view_if_needed()
    shot(page, _name(page, "scenario-5-hold-preview"))
    mark = len(platforms.datamanager.calls)
    held = sync_now(page, sync)
    expect(page.locator("#run-progress .run-status")).to_have_text("Held for review", timeout=30_000)
    held.refresh_from_db()
    assert held.status == SyncRun.Status.HELD and held.to_remove == left
    expect(page.locator(".held-removes")).to_contain_text(f"{left:,} of the")
    assert run_figures_readable(page)
    shot(page, _name(page, "scenario-5-held-run"))
    page.get_by_role("button", name="Cancel this run").click()
    expect(page.locator("#run-progress .run-status")).to_have_text("Cancelled", timeout=30_000)
    held.refresh_from_db()
    assert held.status == SyncRun.Status.CANCELLED
    # Said once, in the run's own words.
    expect(page.locator("#run-progress .alert")).to_have_count(1)
    expect(page.locator("#run-progress .alert")).to_have_text("Cancelled after review: nothing was sent.")
    assert held.sent == held.removed == 0
    assert held_by_google(platforms, sync) == (after_mirror, emails_after_mirror)
    assert sent_since(platforms, mark) == []  # not one member call while held, nor after the cancel
    assert run_figures_readable(page)
    shot(page, _name(page, "scenario-5-cancelled"))

    # The audience page says what happened, and the next run would still be held (nothing was sent).
    page.goto(audience_url)
    expect(page.locator(f"#sync-{sync.pk} .sync-last-run .badge")).to_have_text("Cancelled")
    expect(page.locator(f"#sync-preview-{sync.pk} .preview-hold")).to_contain_text("would be held for review",
                                                                                   timeout=20_000)
    shot(page, _name(page, "scenario-5-after-cancel"))
