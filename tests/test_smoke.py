import pytest
from django.core.management import call_command

from platforms.models import Platform


@pytest.mark.django_db
def test_platform_rows_are_seeded_by_migration():
    assert set(Platform.objects.values_list("code", flat=True)) == {
        "meta", "google_ads", "google_dm", "linkedin", "tiktok", "ttd", "netflix"
    }  # google_dm: Google's Data Manager API (platforms migration 0002)
    assert Platform.objects.get(code="netflix").is_partner_integration


def test_every_page_but_login_requires_a_user(client, db):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/accounts/login/").status_code == 200


def test_no_missing_migrations(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
