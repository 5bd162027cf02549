"""Every system schedule is declared once (activation_manager/schedules.py) and is a beat row after migrate."""

from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from activation_manager.celery import app
from activation_manager.schedules import SYSTEM_SCHEDULES, install

pytestmark = pytest.mark.django_db


def test_every_declared_schedule_is_a_row_after_migrate_running_a_registered_task_on_the_default_queue():
    app.loader.import_default_modules()
    assert app.conf.beat_schedule == SYSTEM_SCHEDULES  # what beat itself installs when it starts
    for name, entry in SYSTEM_SCHEDULES.items():
        row = PeriodicTask.objects.get(name=name)
        assert row.enabled and row.task == entry["task"] and row.queue == "default"
        assert row.task in app.tasks  # the name beat sends is a registered task
        assert app.amqp.router.route({}, row.task)["queue"].name == "default"


def test_no_system_row_exists_that_is_not_declared():
    """The rows earlier migrations made were renamed to the declared names; sync schedules are the marketers'."""
    system = PeriodicTask.objects.exclude(task="syncs.run_scheduled_sync")
    assert set(system.values_list("name", flat=True)) == set(SYSTEM_SCHEDULES)


def test_installing_again_changes_nothing_and_repairs_an_edited_row():
    PeriodicTask.objects.filter(name="Take over sync runs whose worker stopped responding").update(
        task="somewhere.else", enabled=True)
    before = PeriodicTask.objects.count()
    install()
    install()
    assert PeriodicTask.objects.count() == before
    assert PeriodicTask.objects.get(name="Take over sync runs whose worker stopped responding").task == "syncs.watchdog"


def test_long_jobs_go_to_the_bulk_queue_and_short_ones_to_default():
    app.loader.import_default_modules()
    route = app.amqp.router.route
    for task in ("audiences.import_audience", "audiences.purge_audience", "syncs.run_sync"):
        assert route({}, task)["queue"].name == "bulk", task
    for task in ("syncs.watchdog", "syncs.run_scheduled_sync", "alerts.deliver_incident",
                 "audiences.delete_platform_audience", "credentials.revalidate_connection"):
        assert route({}, task)["queue"].name == "default", task
