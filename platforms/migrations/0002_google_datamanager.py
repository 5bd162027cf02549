"""Google Customer Match through the Data Manager API gets its own platform; the Google Ads API one is labelled as
the path for accounts Google still allowlists (no new Customer Match adopters since 1 April 2026)."""

from django.db import migrations
from django.db.models import ProtectedError

DATA_MANAGER = ("google_dm", "Google (Data Manager API)",
                "https://developers.google.com/data-manager/api/devguides/audiences/google-ads/customer-match")
ADS_NAMES = ("Google Ads", "Google Ads API (allowlisted accounts)")


def forwards(apps, schema_editor):
    Platform = apps.get_model("platforms", "Platform")
    code, name, docs_url = DATA_MANAGER
    Platform.objects.update_or_create(
        code=code, defaults={"name": name, "docs_url": docs_url, "active": True, "is_partner_integration": False})
    Platform.objects.filter(code="google_ads", name=ADS_NAMES[0]).update(name=ADS_NAMES[1])


def backwards(apps, schema_editor):
    Platform = apps.get_model("platforms", "Platform")
    for platform in Platform.objects.filter(code="google_dm"):
        try:
            platform.delete()
        except ProtectedError:  # connections to it exist: keep the row
            pass
    Platform.objects.filter(code="google_ads", name=ADS_NAMES[1]).update(name=ADS_NAMES[0])


class Migration(migrations.Migration):
    dependencies = [("platforms", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
