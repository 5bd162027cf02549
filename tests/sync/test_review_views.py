"""The safety rails on the sync pages: the preview of a sync's next run, the hold threshold on the sync row, a held
run confirmed or cancelled on its run page, a run whose platform size collapsed ("needs attention") with its before
and after figures; and the run page keeping its history row current while the run runs. Owner only, CSRF-protected
(the matrices in tests/security cover the new URLs too)."""

from __future__ import annotations

import html

import pytest
from django.test import Client
from django.urls import reverse

from syncs import engine, selectors
from syncs.models import SyncRun
from tests.sync.conftest import ScriptedAdapter, make_audience, make_sync, new_generation, new_run

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def audience(user):
    return make_audience(user, 30)


@pytest.fixture
def adapter():
    return ScriptedAdapter()


@pytest.fixture
def run_now(adapter, sleeps, free_limiter):
    """Execute a new run of a sync through the real engine, against the scripted adapter."""

    def run(sync):
        return engine.execute_run(run_id=new_run(sync).pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)

    return run


@pytest.fixture
def held(user, audience, tiktok_connection, run_now):
    """A mirror sync whose platform holds all 30; then 10 leave (33 % > 20 %): the next run is held."""
    sync = make_sync(user, audience, tiktok_connection, mode="mirror", hold_threshold=20)
    assert run_now(sync).status == SyncRun.Status.SUCCEEDED
    new_generation(audience, [(0, 20)])
    run = run_now(sync)
    assert run.status == SyncRun.Status.HELD
    return sync, run


@pytest.mark.parametrize(("usable", "members", "shown"), [
    (2_979, 2_988, 99), (2_988, 2_988, 100), (1, 1_000, 1), (0, 10, 0), (3, 1_000, 1), (500, 1_000, 50)])
def test_the_usable_share_is_never_all_while_some_cannot_be_sent_nor_none_while_some_can(usable, members, shown):
    figures = engine.Preview(joining=members, changed=0, leaving=0, unchanged=0, usable=usable, members=members,
                             held=0, would_hold=False, removes=False)
    assert selectors.SyncPreview(sync=None, figures=figures, pending_run=None).usable_percent == shown


def preview_html(client, sync, **headers):
    response = client.get(reverse("sync_preview", kwargs={"sync_pk": sync.pk}), **headers)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_the_preview_of_a_first_run_says_who_is_added_and_what_the_platform_can_use(alice_client, user, audience,
                                                                                   tiktok_connection):
    sync = make_sync(user, audience, tiktok_connection, mode="add")
    text = preview_html(alice_client, sync, **HX)
    assert "<html" not in text  # the partial, for the sync's row
    assert "Will <strong class=\"preview-add\">add 30</strong>" in text and "remove 0</strong>" in text
    assert "0 unchanged" in text
    assert "30 of 30 members (100 %) have a key TikTok takes." in text
    page = preview_html(alice_client, sync)  # without JavaScript: a page with its Sync now button
    assert "<html" in page and "Next run:" in page and "Sync now" in page


def test_an_audience_smaller_than_the_platform_serves_says_so_before_the_first_run(alice_client, user, audience,
                                                                                 tiktok_connection):
    sync = make_sync(user, audience, tiktok_connection, mode="add")  # 30 members; TikTok serves from about 1,000
    text = preview_html(alice_client, sync, **HX)
    assert "TikTok serves an audience once about 1,000 of its people are matched; this one has 30 members" in text
    bigger = make_sync(user, make_audience(user, 1_000, name="Big"), tiktok_connection, mode="add")
    assert "serves an audience once" not in preview_html(alice_client, bigger, **HX)


def test_leavers_are_removed_in_mirror_mode_and_kept_in_add_only_mode(alice_client, user, audience,
                                                                      tiktok_connection, run_now):
    sync = make_sync(user, audience, tiktok_connection, mode="add")
    run_now(sync)
    new_generation(audience, [(0, 27)])  # 3 leave
    text = preview_html(alice_client, sync, **HX)
    assert "3 people left the audience: kept on TikTok (add-only mode; mirror mode would remove them)." in text
    assert "Nothing to send:" in text and "held for review" not in text

    sync.mode = "mirror"
    sync.hold_threshold = 20
    sync.save()
    text = preview_html(alice_client, sync, **HX)
    assert "3 people left the audience: removed from TikTok (mirror mode)." in text
    assert "remove 3</strong>" in text
    assert ("It removes 3 of the 30 people TikTok holds (10.0 %), within this sync's 20 % threshold: it is sent "
            "without review.") in text


def test_the_preview_says_when_a_run_would_be_held_and_then_points_at_the_held_run(alice_client, user, audience,
                                                                                    tiktok_connection, run_now):
    sync = make_sync(user, audience, tiktok_connection, mode="mirror", hold_threshold=20)
    run_now(sync)
    new_generation(audience, [(0, 20)])
    text = preview_html(alice_client, sync, **HX)
    assert ("This run would be held for review: it removes 10 of the 30 people TikTok holds (33.3 %), more than "
            "this sync's 20 % threshold.") in text
    held = run_now(sync)
    assert held.status == SyncRun.Status.HELD
    text = preview_html(alice_client, sync, **HX)
    assert "A run is held for review" in text and reverse("sync_run_detail", kwargs={"run_pk": held.pk}) in text
    panel = alice_client.get(reverse("audience_detail", kwargs={"audience_pk": audience.pk})).content.decode()
    assert "Review held run" in panel and "Review it: confirm or cancel" in panel


def test_the_audience_page_asks_for_the_preview_of_a_large_audience_instead_of_loading_it(
        alice_client, user, audience, tiktok_connection, monkeypatch):
    sync = make_sync(user, audience, tiktok_connection)
    url = reverse("sync_preview", kwargs={"sync_pk": sync.pk})
    text = alice_client.get(reverse("audience_detail", kwargs={"audience_pk": audience.pk})).content.decode()
    assert f'hx-get="{url}" hx-trigger="load"' in text  # small: it loads itself, after the page
    monkeypatch.setattr(selectors, "PREVIEW_AUTOLOAD_MEMBERS", 10)
    text = alice_client.get(reverse("audience_detail", kwargs={"audience_pk": audience.pk})).content.decode()
    assert 'hx-trigger="load"' not in text
    assert f'href="{url}" hx-get="{url}"' in text and "compares all 30 members" in text


def test_the_hold_threshold_is_set_on_the_sync_row_and_a_bad_one_is_refused_in_place(alice_client, user, audience,
                                                                                     tiktok_connection):
    sync = make_sync(user, audience, tiktok_connection, mode="mirror", hold_threshold=20)
    url = reverse("sync_update", kwargs={"sync_pk": sync.pk})
    response = alice_client.post(url, {"mode": "mirror", "schedule": "", "hold_threshold": "5"}, **HX)
    sync.refresh_from_db()
    assert response.status_code == 200 and sync.hold_threshold == 5
    assert 'name="hold_threshold" min="0" max="100" step="1" inputmode="numeric" value="5"' in response.content.decode()
    for bad in ("150", "-1", "lots"):
        response = alice_client.post(url, {"mode": "mirror", "schedule": "", "hold_threshold": bad}, **HX)
        text = response.content.decode()
        assert response.status_code == 200 and "The hold threshold is a whole percentage between 0 and 100." in text
        assert f'id="hold-{sync.pk}"' in text and 'aria-invalid="true"' in text
    sync.refresh_from_db()
    assert sync.hold_threshold == 5
    # Without JavaScript: back to the audience page with the message.
    response = alice_client.post(url, {"mode": "mirror", "schedule": "", "hold_threshold": "0"}, follow=True)
    sync.refresh_from_db()
    assert sync.hold_threshold == 0 and "updated" in response.content.decode()


def test_a_held_run_page_shows_the_plan_and_is_confirmed_there(alice_client, held, queued,
                                                               django_capture_on_commit_callbacks):
    sync, run = held
    page = alice_client.get(reverse("sync_run_detail", kwargs={"run_pk": run.pk})).content.decode()
    assert "Held for review" in page and "Review this run before it is sent" in page
    assert "10</strong> of the 30 people TikTok holds (33.3 %)" in page
    assert reverse("sync_run_confirm", kwargs={"run_pk": run.pk}) in page and "Cancel this run" in page
    assert 'hx-trigger="every 1s"' not in page  # nothing to poll while it waits for the marketer

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("sync_run_confirm", kwargs={"run_pk": run.pk}), **HX)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.QUEUED and run.hold_confirmed
    assert queued == [run.pk]
    page = response.content.decode()
    assert response.status_code == 200 and "Confirmed: the run is sending." in page
    assert 'hx-trigger="every 1s"' in page  # polling again
    # Confirming twice says so, instead of queueing twice.
    response = alice_client.post(reverse("sync_run_confirm", kwargs={"run_pk": run.pk}), **HX)
    assert "This run is not waiting for review." in response.content.decode() and queued == [run.pk]


def test_a_held_run_is_cancelled_from_its_page(alice_client, held):
    sync, run = held
    response = alice_client.post(reverse("sync_run_cancel", kwargs={"run_pk": run.pk}), **HX)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.CANCELLED
    page = response.content.decode()
    assert "Cancelled after review: nothing was sent." in page
    assert "Cancelled.</div>" not in page  # said once, not twice


def test_confirming_after_a_reimport_starts_a_new_run_and_the_page_moves_to_it(alice_client, held, audience, queued):
    sync, run = held
    new_generation(audience, [(0, 25)])
    response = alice_client.post(reverse("sync_run_confirm", kwargs={"run_pk": run.pk}), **HX)
    fresh = SyncRun.objects.filter(sync=sync).latest("created_at")
    assert fresh.pk != run.pk and response["HX-Redirect"] == reverse("sync_run_detail", kwargs={"run_pk": fresh.pk})
    run.refresh_from_db()
    assert run.status == SyncRun.Status.CANCELLED
    # Without JavaScript: a redirect with the same message.
    other = SyncRun.objects.create(sync=sync, status=SyncRun.Status.HELD, audience_generation=1)
    response = alice_client.post(reverse("sync_run_confirm", kwargs={"run_pk": other.pk}), follow=True)
    assert "a new run was started instead" in response.content.decode()


def test_a_run_that_needs_attention_shows_the_platform_size_before_and_after(alice_client, user, audience,
                                                                             tiktok_connection):
    sync = make_sync(user, audience, tiktok_connection, mode="mirror")
    run = SyncRun.objects.create(
        sync=sync, status=SyncRun.Status.ATTENTION, size_before=1993, audience_size=3,
        error_message="TikTok reports 1,993 → 3 people (-99.8 %), more than this run explains.")
    page = alice_client.get(reverse("sync_run_detail", kwargs={"run_pk": run.pk})).content.decode()
    assert "Needs attention" in page
    assert 'class="size-change is-alarming">1,993 → 3, −99.8 %' in page
    assert page.count("1,993 → 3, −99.8 %") >= 2  # the progress card and the history row
    assert "Succeeded" not in page


def test_the_polled_progress_carries_the_history_row_and_the_platform_audience_id(alice_client, user, audience,
                                                                                  tiktok_connection):
    sync = make_sync(user, audience, tiktok_connection)
    run = SyncRun.objects.create(sync=sync, status=SyncRun.Status.RUNNING, total_batches=5, done_batches=1,
                                 to_add=12_000, sent=2_400, processed=2_400)
    sync.platform_audience_id = "aud-77"
    sync.save()
    response = alice_client.get(reverse("sync_run_progress", kwargs={"run_pk": run.pk}), **HX)
    page = response.content.decode()
    assert response.status_code == 200 and "20 %" in page
    assert "<code>aud-77</code>" in page
    assert "2,400 of 12,000" in page
    # Out of band: the run's history row, so it says "Running" with the same figures, not "Queued 0 0 0".
    assert f'<template><tr id="history-run-{run.pk}"' in page and 'hx-swap-oob="true"' in page
    row = page[page.index("<template>"):]
    assert "Running" in row and "2,400" in row
    # Plain requests (no htmx) get no out-of-band row.
    plain = alice_client.get(reverse("sync_run_progress", kwargs={"run_pk": run.pk})).content.decode()
    assert "<template>" not in plain


def test_the_run_page_says_just_now_and_separates_thousands(alice_client, user, audience, tiktok_connection):
    sync = make_sync(user, audience, tiktok_connection)
    run = SyncRun.objects.create(sync=sync, status=SyncRun.Status.SUCCEEDED, sent=1_993_000, processed=1_993_000,
                                 matched=1_500_000, audience_size=1_500_000, match_rate=0.75)
    page = alice_client.get(reverse("sync_run_detail", kwargs={"run_pk": run.pk})).content.decode()
    assert "just now" in page and "0 minutes" not in page
    assert "1,993,000" in page and "1,500,000" in page and "1993000" not in page


@pytest.mark.parametrize("name,kind,method", [
    ("sync_preview", "sync", "get"), ("sync_run_confirm", "run", "post"),
])
def test_the_new_urls_are_404_for_another_user(client_for, other_user, user, audience, tiktok_connection, name, kind,
                                               method):
    sync = make_sync(user, audience, tiktok_connection)
    run = SyncRun.objects.create(sync=sync, status=SyncRun.Status.HELD)
    kwargs = {"sync": {"sync_pk": sync.pk}, "run": {"run_pk": run.pk}}[kind]
    response = getattr(client_for(other_user), method)(reverse(name, kwargs=kwargs), **HX)
    assert response.status_code == 404
    run.refresh_from_db()
    assert run.status == SyncRun.Status.HELD


def test_confirming_needs_a_csrf_token(user, audience, tiktok_connection):
    sync = make_sync(user, audience, tiktok_connection)
    run = SyncRun.objects.create(sync=sync, status=SyncRun.Status.HELD)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(reverse("sync_run_confirm", kwargs={"run_pk": run.pk})).status_code == 403
    run.refresh_from_db()
    assert run.status == SyncRun.Status.HELD


def _google_sync(user, audience, *, mode="add"):
    from credentials.models import Connection
    from platforms.models import Platform

    connection = Connection.objects.create(owner=user, platform=Platform.objects.get(code="google_dm"),
                                           label="Ads", config={"customer_id": "1234567890"}, secrets={"x": "y"})
    return make_sync(user, audience, connection, mode=mode)


def _render_preview(sync, figures, last_reported=None) -> str:
    from django.template.loader import render_to_string

    preview = selectors.SyncPreview(sync=sync, figures=figures, pending_run=None, last_reported=last_reported)
    return " ".join(html.unescape(render_to_string("syncs/partials/sync_preview.html", {"preview": preview})).split())


def test_a_first_run_says_how_many_it_sends_will_be_rejected_as_the_run_then_reports(user, audience):
    sync = _google_sync(user, audience)
    figures = engine.Preview(joining=2_988, changed=0, leaving=0, unchanged=0, usable=2_979, members=2_988, held=0,
                             would_hold=False, removes=False)
    text = _render_preview(sync, figures)
    google = "Google (Data Manager API)"
    # The run then reports "Rejected 9 (no key Google takes, or refused by it)": the preview says so before it.
    assert (f'add 2,988</strong> <span class="small muted preview-adds-detail">(9 of them have no key {google} '
            "takes and will be rejected)</span>") in text
    assert f"2,979 of 2,988 members (99 %) have a key {google} takes." in text
    assert "held for review" not in text  # an add-only sync is never held
    # Where the preview cannot tell which of the people sent lack a key, it does not guess.
    some = engine.Preview(joining=40, changed=0, leaving=0, unchanged=2_948, usable=2_979, members=2_988, held=0,
                          would_hold=False, removes=False)
    assert "rejected" not in _render_preview(sync, some)


def test_nothing_to_send_says_what_the_platform_was_sent_and_what_it_reported_not_one_blurred_figure(
        user, audience):
    sync = _google_sync(user, audience)
    google = "Google (Data Manager API)"
    figures = engine.Preview(joining=0, changed=0, leaving=0, unchanged=2_988, usable=2_979, members=2_988, held=0,
                             would_hold=False, removes=False)
    reported = SyncRun(sync=sync, status=SyncRun.Status.SUCCEEDED, sent=2_979, rejected=9, audience_size=1_998,
                       matched=1_998)
    text = _render_preview(sync, figures, reported)
    assert (f"Nothing to send:</strong> {google} has the 2,979 people sent to it; the other 9 members have no key "
            f"{google} takes. {google} last reported 1,998 matched.") in text
    assert "already holds" not in text and "2,988 people" not in text
    # Before the platform reported a size, only what it was sent; a size that is not the matched count says both.
    assert f"no key {google} takes.</p>" in _render_preview(sync, figures)
    reported.matched = 1_500
    assert f"{google} last reported an audience size of 1,998 (1,500 matched)." in _render_preview(
        sync, figures, reported)


def test_after_a_run_the_preview_reads_the_platforms_last_figures(alice_client, user, audience, tiktok_connection,
                                                                  run_now):
    sync = make_sync(user, audience, tiktok_connection, mode="add")
    run = run_now(sync)
    assert (run.sent, run.audience_size, run.matched) == (30, 30, 21)
    text = preview_html(alice_client, sync, **HX)
    assert ("Nothing to send:</strong> TikTok has the 30 people sent to it. TikTok last reported an audience size "
            "of 30 (21 matched).") in text


def test_the_preview_page_mentions_holding_for_review_only_for_a_mirror_sync(alice_client, user, audience,
                                                                             tiktok_connection):
    sync = make_sync(user, audience, tiktok_connection, mode="add", hold_threshold=20)
    page = preview_html(alice_client, sync)
    assert "Next run:" in page and "held for review" not in page
    sync.mode = "mirror"
    sync.save()
    assert "a run removing more than 20 % of the people on TikTok is held for review" in preview_html(alice_client,
                                                                                                      sync)


def test_the_destination_says_the_platform_audience_will_be_created_until_it_is(alice_client, user, audience,
                                                                               tiktok_connection, run_now):
    sync = make_sync(user, audience, tiktok_connection, mode="add")
    url = reverse("audience_detail", kwargs={"audience_pk": audience.pk})

    def destination():
        page = html.unescape(alice_client.get(url).content.decode())
        return page.split(f'id="sync-{sync.pk}"')[1].split("</td>")[0]

    assert "Will be created on TikTok by the first run" in destination()
    SyncRun.objects.create(sync=sync, status=SyncRun.Status.FAILED)  # failed before the audience was created
    assert "Not created on TikTok yet: a run creates it as it starts" in destination()
    run_now(sync)
    sync.refresh_from_db()
    assert f"Audience <code>{sync.platform_audience_id}</code> on TikTok" in destination()
    assert "will be created" not in destination().lower() and "created on" not in destination().lower()
