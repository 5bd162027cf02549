from django.db import migrations, models

PLATFORMS = [
    ("meta", "Meta", "https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences", False),
    ("google_ads", "Google Ads", "https://developers.google.com/google-ads/api/docs/remarketing/audience-segments/customer-match", False),
    ("linkedin", "LinkedIn", "https://learn.microsoft.com/en-us/linkedin/marketing/matched-audiences/matched-audiences", False),
    ("tiktok", "TikTok", "https://business-api.tiktok.com/portal/docs?id=1739566528222210", False),
    ("ttd", "The Trade Desk", "https://partner.thetradedesk.com/v3/portal/data/doc/DataFirstPartyCrm", False),
    ("netflix", "Netflix (partner)", "/platforms/netflix/partner-contract/", True),
]


def seed_platforms(apps, schema_editor):
    Platform = apps.get_model("platforms", "Platform")
    for code, name, docs_url, partner in PLATFORMS:
        Platform.objects.update_or_create(
            code=code, defaults={"name": name, "docs_url": docs_url, "active": True, "is_partner_integration": partner}
        )


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
