"""The beat schedule: re-validate every connection once a day (django-celery-beat's DatabaseScheduler)."""

from django.db import migrations
from django.utils import timezone

TASK_NAME = "Re-validate every connection"
TASK = "credentials.tasks.revalidate_all_connections"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    every_day, _ = IntervalSchedule.objects.get_or_create(every=24, period="hours")
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME,
        defaults={
            "task": TASK,
            "interval": every_day,
            "enabled": True,
            "description": "Checks each active or failing connection with its platform; failures set status error.",
        },
    )
    # Tell a running beat that the schedule changed (what PeriodicTask.save() does outside migrations).
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("credentials", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
