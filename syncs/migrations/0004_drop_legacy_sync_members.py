"""The converted sync members' old rows (syncs/0003) go."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('syncs', '0003_people'),
    ]

    operations = [migrations.DeleteModel(name='LegacySyncMember')]
