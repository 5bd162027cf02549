"""System schedules are declared in activation_manager/schedules.py from here on (installed after every migrate
and by beat at start): the rows earlier migrations made take the declared names and explicit task names."""

from django.db import migrations

RENAMED = {
    "Fail sync runs whose worker stopped responding": "Take over sync runs whose worker stopped responding",
    "Restart imports whose worker stopped responding": "Take over imports whose worker stopped responding",
}
TASKS = {"credentials.tasks.revalidate_all_connections": "credentials.revalidate_all_connections"}


def forward(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for old, new in RENAMED.items():
        if not PeriodicTask.objects.filter(name=new).exists():
            PeriodicTask.objects.filter(name=old).update(name=new)
    for old, new in TASKS.items():
        PeriodicTask.objects.filter(task=old).update(task=new)


def backward(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for old, new in RENAMED.items():
        PeriodicTask.objects.filter(name=new).update(name=old)
    for old, new in TASKS.items():
        PeriodicTask.objects.filter(task=new).update(task=old)


class Migration(migrations.Migration):
    dependencies = [
        ("syncs", "0006_run_lease"),
        ("audiences", "0015_expire_pending_uploads_schedule"),
        ("credentials", "0002_revalidation_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forward, backward)]
