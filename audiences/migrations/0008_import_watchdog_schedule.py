"""Every beat schedule as a PeriodicTask row made by a migration: the import watchdog joins the sync watchdog
(it used to be declared in app.conf.beat_schedule, which DatabaseScheduler copied into a row of the same name
when beat started; update_or_create takes that row over). The sync watchdog also re-queues stalled audience
deletions now: its description says so."""

from django.db import migrations
from django.utils import timezone

IMPORT_TASK_NAME = "Restart imports whose worker stopped responding"
IMPORT_TASK = "audiences.requeue_stale_imports"
SYNC_TASK_NAME = "Fail sync runs whose worker stopped responding"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.update_or_create(
        name=IMPORT_TASK_NAME,
        defaults={
            "task": IMPORT_TASK,
            "interval": every_minute,
            "enabled": True,
            "description": "Re-queues imports left running by a worker that died (no heartbeat for "
            "IMPORT_STALE_AFTER seconds) or queued and never started; they restart cleanly.",
        },
    )
    PeriodicTask.objects.filter(name=SYNC_TASK_NAME).update(
        description="Marks running syncs without a heartbeat for SYNC_STALE_AFTER seconds as failed (the marketer "
        "can resume them from the first unsent batch), and queues again audience deletions that stalled."
    )
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=IMPORT_TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("audiences", "0007_member_changes"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
