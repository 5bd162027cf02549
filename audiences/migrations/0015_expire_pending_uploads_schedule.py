"""The beat entry that deletes uploads still waiting for their column mapping after UPLOAD_PENDING_HOURS (24):
a PeriodicTask row, like every schedule (see 0008), hourly."""

from django.db import migrations
from django.utils import timezone

TASK_NAME = "Delete uploads still waiting for a mapping after 24 hours"
TASK = "audiences.expire_pending_uploads"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    every_hour, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME,
        defaults={
            "task": TASK,
            "interval": every_hour,
            "enabled": True,
            "description": "Deletes the files of imports nobody mapped within UPLOAD_PENDING_HOURS (their jobs are "
            "marked expired) and files in the upload folder no import waits for.",
        },
    )
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("audiences", "0014_import_column_counts_expired"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
