from django.db import migrations, models

from platforms.migrations._seed import seed_platforms


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Platform",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("code", models.SlugField(max_length=32, unique=True)),
                ("name", models.CharField(max_length=100)),
                ("active", models.BooleanField(default=True)),
                ("docs_url", models.CharField(max_length=300, help_text="Platform docs, or our partner contract for partner integrations.")),
                ("is_partner_integration", models.BooleanField(default=False, help_text="No public API: integrated through a partner contract of our own.")),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.RunPython(seed_platforms, migrations.RunPython.noop),
    ]
