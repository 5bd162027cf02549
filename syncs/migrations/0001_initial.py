"""Sync, SyncRun, SyncBatch and SyncMember, moved from the audiences app with their tables and rows."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('audiences', '0008_import_watchdog_schedule'),
        ('credentials', '0002_revalidation_schedule'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    # The models moved here from the audiences app: this takes over their tables as they are (state only);
    # 0002 gives them this app's table names.
    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Sync',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('mode', models.CharField(choices=[('add', 'Add only'), ('mirror', 'Mirror (add and remove)')], default='add', max_length=8)),
                        ('schedule', models.CharField(blank=True, choices=[('', 'Manual only'), ('hourly', 'Hourly'), ('daily', 'Daily'), ('weekly', 'Weekly')], default='', max_length=8)),
                        ('platform_audience_id', models.CharField(blank=True, max_length=200)),
                        ('confirmed_generation', models.PositiveIntegerField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('audience', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='syncs', to='audiences.audience')),
                        ('connection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='syncs', to='credentials.connection')),
                        ('owner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='syncs', to=settings.AUTH_USER_MODEL)),
                        ('periodic_task', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='django_celery_beat.periodictask')),
                    ],
                    options={
                        'db_table': 'audiences_sync',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='SyncMember',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('fingerprint', models.CharField(max_length=64)),
                        ('keys', models.JSONField()),
                        ('sync', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='confirmed_members', to='syncs.sync')),
                    ],
                    options={'db_table': 'audiences_syncmember'},
                ),
                migrations.CreateModel(
                    name='SyncRun',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('partial', 'Partly failed'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], db_index=True, default='queued', max_length=16)),
                        ('trigger', models.CharField(choices=[('manual', 'Manual'), ('schedule', 'Schedule')], default='manual', max_length=16)),
                        ('audience_generation', models.PositiveIntegerField(blank=True, null=True)),
                        ('total_batches', models.PositiveIntegerField(default=0)),
                        ('done_batches', models.PositiveIntegerField(default=0)),
                        ('to_add', models.PositiveIntegerField(default=0)),
                        ('to_remove', models.PositiveIntegerField(default=0)),
                        ('leaves_exact', models.BooleanField(default=False)),
                        ('processed', models.PositiveIntegerField(default=0)),
                        ('sent', models.PositiveIntegerField(default=0)),
                        ('removed', models.PositiveIntegerField(default=0)),
                        ('rejected', models.PositiveIntegerField(default=0)),
                        ('matched', models.PositiveBigIntegerField(blank=True, null=True)),
                        ('audience_size', models.PositiveBigIntegerField(blank=True, null=True)),
                        ('match_rate', models.FloatField(blank=True, help_text='0..1, as reported by the platform', null=True)),
                        ('error_message', models.TextField(blank=True)),
                        ('cancel_requested', models.BooleanField(default=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('heartbeat_at', models.DateTimeField(blank=True, null=True)),
                        ('sync', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='runs', to='syncs.sync')),
                    ],
                    options={
                        'db_table': 'audiences_syncrun',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='SyncBatch',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('seq', models.PositiveIntegerField()),
                        ('kind', models.CharField(choices=[('add', 'Add'), ('remove', 'Remove'), ('replace', 'Replace')], max_length=8)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('sent', 'Sent'), ('failed', 'Failed')], default='pending', max_length=8)),
                        ('first_fingerprint', models.CharField(max_length=64)),
                        ('last_fingerprint', models.CharField(max_length=64)),
                        ('size', models.PositiveIntegerField()),
                        ('fingerprints', models.TextField(blank=True, default='')),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('error_message', models.TextField(blank=True)),
                        ('sent_at', models.DateTimeField(blank=True, null=True)),
                        ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='batches', to='syncs.syncrun')),
                    ],
                    options={
                        'db_table': 'audiences_syncbatch',
                        'ordering': ['seq'],
                    },
                ),
                migrations.AddConstraint(
                    model_name='sync',
                    constraint=models.UniqueConstraint(fields=('audience', 'connection'), name='one_sync_per_audience_connection'),
                ),
                migrations.AddConstraint(
                    model_name='syncmember',
                    constraint=models.UniqueConstraint(fields=('sync', 'fingerprint'), name='unique_synced_member'),
                ),
                migrations.AddIndex(
                    model_name='syncrun',
                    index=models.Index(fields=['sync', '-created_at'], name='audiences_s_sync_id_f125af_idx'),
                ),
                migrations.AddConstraint(
                    model_name='syncbatch',
                    constraint=models.UniqueConstraint(fields=('run', 'seq'), name='unique_batch_seq_per_run'),
                ),
            ],
        ),
    ]
