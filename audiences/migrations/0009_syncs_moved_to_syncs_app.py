"""The sync models moved to the syncs app (syncs/0001 took over their tables)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('audiences', '0008_import_watchdog_schedule'),
        ('syncs', '0001_initial'),
    ]

    # The sync models now live in the syncs app (which took over their tables): forget them here, keep the tables.
    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveField(
                    model_name='sync',
                    name='audience',
                ),
                migrations.RemoveField(
                    model_name='sync',
                    name='connection',
                ),
                migrations.RemoveField(
                    model_name='sync',
                    name='owner',
                ),
                migrations.RemoveField(
                    model_name='sync',
                    name='periodic_task',
                ),
                migrations.RemoveField(
                    model_name='syncrun',
                    name='sync',
                ),
                migrations.RemoveField(
                    model_name='syncbatch',
                    name='run',
                ),
                migrations.DeleteModel(
                    name='SyncMember',
                ),
                migrations.DeleteModel(
                    name='Sync',
                ),
                migrations.DeleteModel(
                    name='SyncBatch',
                ),
                migrations.DeleteModel(
                    name='SyncRun',
                ),
            ],
        ),
    ]
