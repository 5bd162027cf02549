"""The converted members' old rows (syncs/0003) go."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('audiences', '0010_people'),
        ('syncs', '0003_people'),
    ]

    operations = [migrations.DeleteModel(name='LegacyMember')]
