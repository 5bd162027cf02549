"""The moved sync tables take this app's names; content types and beat rows follow the move."""

from django.db import migrations

# Task names stored in django-celery-beat rows: implicit (module path) before the move, explicit after.
RENAMED_TASKS = {
    "audiences.sync_tasks.fail_stale_runs": "syncs.watchdog",
    "audiences.sync_tasks.run_scheduled_sync": "syncs.run_scheduled_sync",
}
MODELS = ("sync", "syncrun", "syncbatch", "syncmember")


def follow_the_move(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for model in MODELS:
        if not ContentType.objects.filter(app_label="syncs", model=model).exists():
            ContentType.objects.filter(app_label="audiences", model=model).update(app_label="syncs")
    for old, new in RENAMED_TASKS.items():
        PeriodicTask.objects.filter(task=old).update(task=new)


def back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    ContentType.objects.filter(app_label="syncs", model__in=MODELS).update(app_label="audiences")
    for old, new in RENAMED_TASKS.items():
        PeriodicTask.objects.filter(task=new).update(task=old)


class Migration(migrations.Migration):

    dependencies = [
        ('syncs', '0001_initial'),
        ('audiences', '0009_syncs_moved_to_syncs_app'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
    ]

    operations = [
        migrations.RenameIndex(
            model_name='syncrun',
            new_name='syncs_syncr_sync_id_fed32a_idx',
            old_name='audiences_s_sync_id_f125af_idx',
        ),
        migrations.AlterModelTable(name='sync', table=None),
        migrations.AlterModelTable(name='syncbatch', table=None),
        migrations.AlterModelTable(name='syncmember', table=None),
        migrations.AlterModelTable(name='syncrun', table=None),
        migrations.RunPython(follow_the_move, back),
    ]
