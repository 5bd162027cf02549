"""Sync and run views: the audience's sync panel, actions, the run page and its progress partial; owner only."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from credentials.models import Connection
from platforms.models import Platform
from syncs import engine
from syncs import services as sync_services
from syncs.models import Sync, SyncBatch, SyncRun
from tests.sync.conftest import ScriptedAdapter, make_audience, make_sync, new_run

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def audience(user):
    return make_audience(user, 12)


def test_the_panel_offers_only_the_owners_active_connections(alice_client, user, other_user, audience,
                                                             tiktok_connection):
    meta = Platform.objects.get(code="meta")
    Connection.objects.create(owner=user, platform=meta, label="Broken one", status="error", secrets={})
    Connection.objects.create(owner=other_user, platform=meta, label="Bobs account", secrets={})
    from django.template.loader import render_to_string

    from syncs.selectors import audience_sync_panel

    html = render_to_string("syncs/partials/audience_syncs.html",
                            {"audience": audience, "panel": audience_sync_panel(audience)})
    assert 'id="add-sync"' in html and 'class="sync-add' in html
    assert "TikTok · Main" in html
    assert "Broken one" not in html and "Bobs account" not in html
    for value in ("add", "mirror", "hourly", "daily", "weekly"):
        assert f'value="{value}"' in html


def test_create_a_sync_with_a_schedule_over_htmx(alice_client, audience, tiktok_connection):
    response = alice_client.post(reverse("sync_create", kwargs={"audience_pk": audience.pk}),
                                 {"connection": tiktok_connection.pk, "mode": "mirror", "schedule": "daily"}, **HX)
    assert response.status_code == 200
    sync = Sync.objects.get(audience=audience)
    assert (sync.mode, sync.schedule) == ("mirror", "daily")
    task = PeriodicTask.objects.get(pk=sync.periodic_task_id)
    assert task.task == "syncs.run_scheduled_sync" and task.args == f"[{sync.pk}]"
    # Schedules are crontabs in the sync's time zone now (daily at the default 06:00 UTC), no longer intervals.
    assert task.interval is None
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "6", "*")
    assert str(task.crontab.timezone) == "UTC"
    html = response.content.decode()
    assert f'id="sync-{sync.pk}"' in html and "Sync now" in html and "Never run" in html


def test_schedule_changes_update_and_delete_the_periodic_task(alice_client, user, audience, tiktok_connection):
    sync = sync_services.create_sync(owner=user, audience=audience, connection_id=tiktok_connection.pk,
                                     schedule="hourly")
    task_pk = sync.periodic_task_id
    alice_client.post(reverse("sync_update", kwargs={"sync_pk": sync.pk}), {"mode": "add", "schedule": "weekly"},
                      **HX)
    task = PeriodicTask.objects.get(pk=task_pk)
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "6", "1")  # Mondays
    alice_client.post(reverse("sync_update", kwargs={"sync_pk": sync.pk}), {"mode": "add", "schedule": ""}, **HX)
    sync.refresh_from_db()
    assert sync.periodic_task_id is None and not PeriodicTask.objects.filter(pk=task_pk).exists()
    sync_services.update_sync(sync=sync, schedule="daily")
    task_pk = sync.periodic_task_id
    alice_client.post(reverse("sync_delete", kwargs={"sync_pk": sync.pk}), **HX)
    assert not Sync.objects.filter(pk=sync.pk).exists() and not PeriodicTask.objects.filter(pk=task_pk).exists()


def test_bad_input_gets_a_clear_message_not_a_500(alice_client, user, other_user, audience, tiktok_connection):
    url = reverse("sync_create", kwargs={"audience_pk": audience.pk})
    bobs = Connection.objects.create(owner=other_user, platform=Platform.objects.get(code="meta"), label="B",
                                     secrets={})
    for data, expected in [
        ({"connection": "", "mode": "add"}, "Choose a connection"),
        ({"connection": "abc"}, "Choose a connection"),
        ({"connection": bobs.pk}, "Choose one of your connections"),
        ({"connection": tiktok_connection.pk, "mode": "sideways"}, "Choose a mode"),
        ({"connection": tiktok_connection.pk, "schedule": "yearly"}, "Choose a schedule"),
    ]:
        response = alice_client.post(url, data, **HX)
        assert response.status_code == 200 and expected in response.content.decode(), data
    assert not Sync.objects.exists()
    sync_services.create_sync(owner=user, audience=audience, connection_id=tiktok_connection.pk)
    response = alice_client.post(url, {"connection": tiktok_connection.pk}, **HX)
    assert "already syncs to" in response.content.decode()
    # Without htmx: redirect with a message.
    response = alice_client.post(url, {"connection": "x"})
    assert response.status_code == 302


def test_sync_now_queues_one_run_and_redirects_to_its_page(alice_client, user, audience, tiktok_connection, queued):
    sync = make_sync(user, audience, tiktok_connection)
    url = reverse("sync_run_now", kwargs={"sync_pk": sync.pk})
    response = alice_client.post(url, **HX)
    run = SyncRun.objects.get(sync=sync)
    assert response.status_code == 204
    assert response["HX-Redirect"] == reverse("sync_run_detail", kwargs={"run_pk": run.pk})
    response = alice_client.post(url)  # again, while the first is queued: the same run
    assert response.status_code == 302 and SyncRun.objects.filter(sync=sync).count() == 1


def test_progress_partial_polls_while_active_and_stops_at_100_percent(alice_client, user, audience,
                                                                      tiktok_connection, sleeps, free_limiter):
    sync = make_sync(user, audience, tiktok_connection)
    run = new_run(sync)
    url = reverse("sync_run_progress", kwargs={"run_pk": run.pk})
    response = alice_client.get(url, **HX)
    html = response.content.decode()
    assert response.status_code == 200 and 'hx-trigger="every 1s"' in html and "0 %" in html
    assert "<progress" in html and "Cancel" in html
    engine.execute_run(run_id=run.pk, adapter=ScriptedAdapter(), sleep=sleeps, limiter=free_limiter)
    response = alice_client.get(url, **HX)
    html = response.content.decode()
    assert response.status_code == 286  # htmx: stop polling
    assert "100 %" in html and "every 1s" not in html
    assert "2 of 2" in html and "12 of 12" in html and "Succeeded" in html and "Match rate" in html


def test_progress_shows_batch_errors_and_resume(alice_client, user, audience, tiktok_connection, queued):
    sync = make_sync(user, audience, tiktok_connection)
    run = new_run(sync)
    SyncRun.objects.filter(pk=run.pk).update(status="failed", total_batches=2, done_batches=1, audience_generation=1,
                                             error_message="The worker stopped responding; resume the run.")
    SyncBatch.objects.create(run=run, seq=1, kind="add", size=3,
                             status="failed", error_message="Meta: (#100) Invalid parameter")
    response = alice_client.get(reverse("sync_run_progress", kwargs={"run_pk": run.pk}), **HX)
    html = response.content.decode()
    assert "50 %" in html and "Invalid parameter" in html and "Resume" in html and "stopped responding" in html
    response = alice_client.post(reverse("sync_run_resume", kwargs={"run_pk": run.pk}), **HX)
    assert response.status_code == 200 and "every 1s" in response.content.decode()
    run.refresh_from_db()
    assert run.status == "queued"


def test_cancel_from_the_page(alice_client, user, audience, tiktok_connection):
    run = new_run(make_sync(user, audience, tiktok_connection))
    response = alice_client.post(reverse("sync_run_cancel", kwargs={"run_pk": run.pk}), **HX)
    assert response.status_code == 286 and "Cancelled" in response.content.decode()
    run.refresh_from_db()
    assert run.status == "cancelled"


def test_run_page_shows_history_and_chart(alice_client, user, audience, tiktok_connection):
    sync = make_sync(user, audience, tiktok_connection)
    for rate, size in [(0.5, 100), (0.6, 120), (0.7, 130)]:
        SyncRun.objects.create(sync=sync, status="succeeded", match_rate=rate, audience_size=size, sent=size)
    run = sync.runs.first()
    response = alice_client.get(reverse("sync_run_detail", kwargs={"run_pk": run.pk}))
    html = response.content.decode()
    assert response.status_code == 200 and "<svg" in html and "polyline" in html
    assert html.count("badge-succeeded") >= 3 and "70 %" in html


@pytest.mark.parametrize("name,kind,method", [
    ("sync_create", "audience", "post"), ("sync_run_now", "sync", "post"), ("sync_update", "sync", "post"),
    ("sync_delete", "sync", "post"), ("sync_run_detail", "run", "get"), ("sync_run_progress", "run", "get"),
    ("sync_run_cancel", "run", "post"), ("sync_run_resume", "run", "post"),
])
def test_everything_is_404_for_another_user(client_for, other_user, user, audience, tiktok_connection, name, kind,
                                            method):
    sync = make_sync(user, audience, tiktok_connection)
    run = new_run(sync)
    kwargs = {"audience": {"audience_pk": audience.pk}, "sync": {"sync_pk": sync.pk}, "run": {"run_pk": run.pk}}[kind]
    client = client_for(other_user)
    response = getattr(client, method)(reverse(name, kwargs=kwargs), {"connection": tiktok_connection.pk}, **HX)
    assert response.status_code == 404
    assert Sync.objects.filter(pk=sync.pk).exists() and SyncRun.objects.get(pk=run.pk).status == "queued"


def test_admin_lists_syncs_and_runs_with_their_batches(client, user, audience, tiktok_connection):
    from django.contrib.auth import get_user_model

    admin_user = get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password-123")
    client.force_login(admin_user)
    sync = make_sync(user, audience, tiktok_connection)
    run = new_run(sync)
    SyncBatch.objects.create(run=run, seq=1, kind="add", size=3,
                             status="failed", error_message="Meta: (#100) Invalid parameter")
    assert client.get(reverse("admin:syncs_sync_changelist")).status_code == 200
    assert client.get(reverse("admin:syncs_syncrun_changelist")).status_code == 200
    page = client.get(reverse("admin:syncs_syncrun_change", args=[run.pk]))
    assert page.status_code == 200 and "Invalid parameter" in page.content.decode()
    assert "tok-secret-123456" not in page.content.decode()


def test_the_audience_page_shows_its_syncs_panel(alice_client, user, audience, tiktok_connection, sleeps,
                                                 free_limiter):
    sync = make_sync(user, audience, tiktok_connection, mode="mirror")
    run = new_run(sync)
    engine.execute_run(run_id=run.pk, adapter=ScriptedAdapter(), sleep=sleeps, limiter=free_limiter)
    response = alice_client.get(reverse("audience_detail", kwargs={"audience_pk": audience.pk}))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="audience-syncs"' in html and "Sync now" in html and "TikTok · Main" in html
    assert reverse("sync_run_detail", kwargs={"run_pk": run.pk}) in html and "badge-succeeded" in html


def _schedule_fields(form_html: str) -> dict[str, bool]:
    """Whether each schedule field's label is shown (no ``hidden`` attribute), by the field's name."""
    shown = {}
    for attrs, body in re.findall(r"<label data-schedule-for=\"[^\"]*\"([^>]*)>(.*?)</label>", form_html, re.S):
        name = re.search(r'name="(schedule_\w+)"', body).group(1)
        shown[name] = "hidden" not in attrs
    return shown


@pytest.mark.parametrize("schedule, shown", [
    ("", set()),
    ("hourly", {"schedule_time"}),
    ("daily", {"schedule_time", "schedule_timezone"}),
    ("weekly", {"schedule_time", "schedule_timezone", "schedule_weekday"}),
])
def test_a_sync_form_shows_only_the_fields_its_schedule_uses(alice_client, user, audience, tiktok_connection,
                                                            schedule, shown):
    sync = sync_services.create_sync(owner=user, audience=audience, connection_id=tiktok_connection.pk,
                                     schedule=schedule)
    Connection.objects.create(owner=user, platform=Platform.objects.get(code="meta"), label="Other",
                              secrets={"access_token": "x"})
    page = alice_client.get(reverse("audience_detail", kwargs={"audience_pk": audience.pk})).content.decode()
    settings_form = page.split(f'id="sync-settings-{sync.pk}"')[1].split("</form>")[0]
    fields = _schedule_fields(settings_form)
    assert set(fields) == {"schedule_time", "schedule_weekday", "schedule_timezone"}  # all still sent
    assert {name for name, visible in fields.items() if visible} == shown
    hint_hidden = re.search(r'<span data-schedule-for="hourly"( hidden)?> \(its minute, every hour\)', settings_form)
    assert (hint_hidden.group(1) is None) == (schedule == "hourly")
    # The add form starts on "Manual only": none of them shows until a schedule is chosen (static/js/app.js).
    add_form = page.split('id="add-sync"')[1].split("</form>")[0]
    assert _schedule_fields(add_form) == dict.fromkeys(("schedule_time", "schedule_weekday", "schedule_timezone"),
                                                       False)
    assert 'name="schedule" data-schedule' in add_form and 'name="schedule" data-schedule' in settings_form
