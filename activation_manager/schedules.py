"""Every system schedule, declared here and nowhere else (a sync's own schedule is its marketer's:
syncs.services, which writes its beat row with every create and update).

``SYSTEM_SCHEDULES`` is Celery's ``beat_schedule`` (settings.CELERY_BEAT_SCHEDULE). django-celery-beat's
DatabaseScheduler writes it into PeriodicTask rows when beat starts, and ``install`` does the same after every
``migrate`` (with the scheduler's own ``ModelEntry.from_entry``), so the rows are there for the admin before beat
first runs. An entry's name is its row's name: renaming one here leaves the old row, so rename it in a migration
too. Every entry runs on the default queue, never behind a long import or sync on the bulk queue.
"""

from __future__ import annotations

from datetime import timedelta

DEFAULT = {"queue": "default"}

SYSTEM_SCHEDULES: dict[str, dict] = {
    "Take over sync runs whose worker stopped responding": {
        "task": "syncs.watchdog", "schedule": 60.0, "options": DEFAULT,
    },
    "Take over imports whose worker stopped responding": {
        "task": "audiences.requeue_stale_imports", "schedule": 60.0, "options": DEFAULT,
    },
    "Read the platforms' reports on sent requests": {
        "task": "syncs.check_platform_reports", "schedule": 60.0, "options": DEFAULT,
    },
    "Re-validate every connection": {
        "task": "credentials.revalidate_all_connections", "schedule": timedelta(hours=24), "options": DEFAULT,
    },
    "Delete uploads still waiting for a mapping after 24 hours": {
        "task": "audiences.expire_pending_uploads", "schedule": timedelta(hours=1), "options": DEFAULT,
    },
}


def install(using: str = "default", **kwargs) -> None:
    """post_migrate: the declared schedules as PeriodicTask rows (created, or updated in place)."""
    from django_celery_beat.schedulers import ModelEntry

    from activation_manager.celery import app

    for name, entry in SYSTEM_SCHEDULES.items():
        ModelEntry.from_entry(name, app=app, **entry)
