"""Members become people: one row per person (the audience's person key), compact columns instead of JSON,
earlier versions kept only while a sync holds them (MemberVersion), changes recorded per person. The old rows
stay in LegacyMember until syncs/0003 has converted them (audiences/0011 drops them)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audiences', '0009_syncs_moved_to_syncs_app'),
    ]

    operations = [
        migrations.AlterField(
            model_name='member',
            name='audience',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+',
                                    to='audiences.audience'),
        ),
        migrations.RenameModel(old_name='Member', new_name='LegacyMember'),
        migrations.DeleteModel(name='MemberChange'),
        migrations.RemoveField(model_name='audience', name='changes_base_generation'),
        migrations.AddField(
            model_name='audience',
            name='person_key',
            field=models.CharField(blank=True, default='', max_length=16),
        ),
        migrations.AddField(
            model_name='audience',
            name='last_mapping',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='audience',
            name='changes_recorded_from',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='audience',
            name='platform_coverage',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='importjob',
            name='person_key',
            field=models.CharField(blank=True, default='', max_length=16),
        ),
        migrations.AddField(model_name='importjob', name='members_joined', field=models.PositiveIntegerField(default=0)),
        migrations.AddField(model_name='importjob', name='members_changed', field=models.PositiveIntegerField(default=0)),
        migrations.AddField(model_name='importjob', name='members_left', field=models.PositiveIntegerField(default=0)),
        migrations.CreateModel(
            name='Member',
            fields=[
                ('pk', models.CompositePrimaryKey('audience', 'person', blank=True, editable=False, primary_key=True, serialize=False)),
                ('audience', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='members', to='audiences.audience')),
                ('generation', models.PositiveIntegerField()),
                ('dob', models.PositiveIntegerField(null=True)),
                ('person', models.BinaryField(max_length=12)),
                ('e', models.BinaryField(null=True)),
                ('eg', models.BinaryField(null=True)),
                ('eu', models.BinaryField(null=True)),
                ('et', models.BinaryField(null=True)),
                ('p', models.BinaryField(null=True)),
                ('pd', models.BinaryField(null=True)),
                ('fn', models.BinaryField(null=True)),
                ('ln', models.BinaryField(null=True)),
                ('fng', models.BinaryField(null=True)),
                ('lng', models.BinaryField(null=True)),
                ('ct', models.BinaryField(null=True)),
                ('fi', models.CharField(max_length=4, null=True)),
                ('st', models.CharField(max_length=64, null=True)),
                ('g', models.CharField(max_length=1, null=True)),
                ('z', models.CharField(max_length=16, null=True)),
                ('zg', models.CharField(max_length=10, null=True)),
                ('c', models.CharField(max_length=2, null=True)),
                ('x', models.CharField(max_length=256, null=True)),
                ('m', models.BinaryField(null=True)),
            ],
        ),
        migrations.CreateModel(
            name='MemberVersion',
            fields=[
                ('pk', models.CompositePrimaryKey('audience', 'person', 'generation', blank=True, editable=False, primary_key=True, serialize=False)),
                ('audience', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='member_versions', to='audiences.audience')),
                ('generation', models.IntegerField()),
                ('dob', models.PositiveIntegerField(null=True)),
                ('person', models.BinaryField(max_length=12)),
                ('e', models.BinaryField(null=True)),
                ('eg', models.BinaryField(null=True)),
                ('eu', models.BinaryField(null=True)),
                ('et', models.BinaryField(null=True)),
                ('p', models.BinaryField(null=True)),
                ('pd', models.BinaryField(null=True)),
                ('fn', models.BinaryField(null=True)),
                ('ln', models.BinaryField(null=True)),
                ('fng', models.BinaryField(null=True)),
                ('lng', models.BinaryField(null=True)),
                ('ct', models.BinaryField(null=True)),
                ('fi', models.CharField(max_length=4, null=True)),
                ('st', models.CharField(max_length=64, null=True)),
                ('g', models.CharField(max_length=1, null=True)),
                ('z', models.CharField(max_length=16, null=True)),
                ('zg', models.CharField(max_length=10, null=True)),
                ('c', models.CharField(max_length=2, null=True)),
                ('x', models.CharField(max_length=256, null=True)),
                ('m', models.BinaryField(null=True)),
            ],
        ),
        migrations.CreateModel(
            name='MemberChange',
            fields=[
                ('pk', models.CompositePrimaryKey('audience', 'generation', 'person', blank=True, editable=False, primary_key=True, serialize=False)),
                ('audience', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='changes', to='audiences.audience')),
                ('generation', models.PositiveIntegerField()),
                ('person', models.BinaryField(max_length=12)),
            ],
        ),
    ]
