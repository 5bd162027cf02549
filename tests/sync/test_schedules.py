"""Schedules a person can read: daily and weekly syncs at a time of day in a time zone, beat rows (crontabs) named
after what they do, the next run as beat computes it."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.urls import reverse

from syncs import selectors
from syncs import services as sync_services
from syncs.models import Sync
from tests.sync.conftest import make_audience, tiktok_connection  # noqa: F401

pytestmark = pytest.mark.django_db
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
HX = {"HTTP_HX_REQUEST": "true"}


def test_a_daily_sync_is_a_crontab_in_its_time_zone_named_after_what_it_does(user, tiktok_connection):  # noqa: F811
    sync = sync_services.create_sync(owner=user, audience=make_audience(user, 1, name="VIP customers"),
                                     connection_id=tiktok_connection.pk, schedule="daily", schedule_time="06:30",
                                     schedule_timezone="Europe/Paris")
    task = sync.periodic_task
    assert task.interval is None and task.name == f"Daily sync of VIP customers to TikTok · Main (sync {sync.pk})"
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "6", "*")
    assert str(task.crontab.timezone) == "Europe/Paris"
    assert task.description.startswith("Daily at 06:30 (Europe/Paris)")


def test_a_weekly_sync_runs_on_its_weekday(user, tiktok_connection):  # noqa: F811
    sync = sync_services.create_sync(owner=user, audience=make_audience(user, 1), connection_id=tiktok_connection.pk,
                                     schedule="weekly", schedule_time="21:05", schedule_weekday="6",
                                     schedule_timezone="America/New_York")
    crontab = sync.periodic_task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("5", "21", "0")  # cron's Sunday is 0
    assert selectors.schedule_text(sync) == "Weekly on Sunday at 21:05 (America/New_York)"


def test_next_run_at_is_when_beat_fires_it(user, tiktok_connection):  # noqa: F811
    sync = Sync(schedule="daily", schedule_time=dt.time(6, 30), schedule_timezone="Europe/Paris")
    now = dt.datetime(2026, 12, 1, 5, 0, tzinfo=dt.UTC)  # 06:00 in Paris: today's run is still ahead
    assert selectors.next_run_at(sync, now=now) == dt.datetime(2026, 12, 1, 6, 30, tzinfo=PARIS)
    later = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)  # 07:00 in Paris: tomorrow's
    assert selectors.next_run_at(sync, now=later) == dt.datetime(2026, 12, 2, 6, 30, tzinfo=PARIS)
    weekly = Sync(schedule="weekly", schedule_time=dt.time(9, 0), schedule_weekday=0, schedule_timezone="UTC")
    assert selectors.next_run_at(weekly, now=later) == dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)  # a Monday
    hourly = Sync(schedule="hourly", schedule_time=dt.time(0, 15), schedule_timezone="UTC")
    assert selectors.next_run_at(hourly, now=later) == dt.datetime(2026, 12, 1, 6, 15, tzinfo=dt.UTC)
    assert selectors.next_run_at(Sync(schedule=""), now=later) is None
    # Across a daylight-saving change the wall-clock time holds (Paris goes to summer time on 29 March 2026).
    spring = Sync(schedule="daily", schedule_time=dt.time(6, 30), schedule_timezone="Europe/Paris")
    at = selectors.next_run_at(spring, now=dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.UTC))
    assert at == dt.datetime(2026, 3, 29, 6, 30, tzinfo=PARIS) and at.utcoffset() == dt.timedelta(hours=2)


@pytest.mark.parametrize("field, value", [("schedule_time", "25:00"), ("schedule_time", "six"),
                                          ("schedule_weekday", "9"), ("schedule_timezone", "Mars/Olympus")])
def test_bad_schedule_input_is_a_clear_error(user, tiktok_connection, field, value):  # noqa: F811
    with pytest.raises(sync_services.SyncError) as exc_info:
        sync_services.create_sync(owner=user, audience=make_audience(user, 1), connection_id=tiktok_connection.pk,
                                  schedule="daily", **{field: value})
    assert exc_info.value.field == field and not Sync.objects.exists()


def test_the_sync_form_takes_the_time_weekday_and_zone_and_shows_the_next_run(alice_client, user,
                                                                           tiktok_connection):  # noqa: F811
    audience = make_audience(user, 1)
    response = alice_client.post(reverse("sync_create", kwargs={"audience_pk": audience.pk}), {
        "connection": tiktok_connection.pk, "mode": "add", "schedule": "weekly", "schedule_time": "07:45",
        "schedule_weekday": "2", "schedule_timezone": "Asia/Tokyo"}, **HX)
    sync = Sync.objects.get(audience=audience)
    assert (sync.schedule_time, sync.schedule_weekday, sync.schedule_timezone) == (dt.time(7, 45), 2, "Asia/Tokyo")
    html = response.content.decode()
    assert "Weekly on Wednesday at 07:45 (Asia/Tokyo) · next run" in html
    alice_client.post(reverse("sync_update", kwargs={"sync_pk": sync.pk}), {
        "mode": "add", "schedule": "daily", "schedule_time": "23:10", "schedule_timezone": "UTC"}, **HX)
    sync.refresh_from_db()
    assert sync.periodic_task.crontab.hour == "23" and sync.periodic_task.name.startswith("Daily sync of ")
    bad = alice_client.post(reverse("sync_update", kwargs={"sync_pk": sync.pk}), {
        "mode": "add", "schedule": "daily", "schedule_time": "99:99"}, **HX)
    assert bad.status_code == 200 and "HH:MM" in bad.content.decode()


def test_the_dashboard_lists_the_next_scheduled_runs(alice_client, user, tiktok_connection):  # noqa: F811
    sync_services.create_sync(owner=user, audience=make_audience(user, 1, name="Weekly VIPs"),
                              connection_id=tiktok_connection.pk, schedule="daily", schedule_time="06:00")
    page = alice_client.get(reverse("dashboard")).content.decode()
    assert "Next scheduled runs" in page and "Daily sync of" in page and "Weekly VIPs" in page
