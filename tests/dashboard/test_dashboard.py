"""The dashboard puts what needs attention first and shows only the signed-in user's things."""

import pytest
from django.urls import reverse

from audiences.models import Audience, ImportJob
from credentials.models import Connection
from platforms.models import Platform
from syncs.models import Sync, SyncRun
from tests.sample_form import submit_sample_form


def _connection(owner, *, code="meta", label="Main", status=Connection.Status.ACTIVE, last_error=""):
    return Connection.objects.create(
        owner=owner,
        platform=Platform.objects.get(code=code),
        label=label,
        config={"ad_account_id": "act_1"},
        secrets={"access_token": "EAAsecret-dashboard-token"},
        status=status,
        last_error=last_error,
    )


def _run(sync, status, **extra):
    return SyncRun.objects.create(sync=sync, status=status, **extra)


@pytest.mark.django_db
def test_new_user_sees_the_three_first_steps(alice_client):
    page = alice_client.get(reverse("dashboard")).content.decode()
    assert "Three steps to your first audience" in page
    assert "Needs your attention" not in page


@pytest.mark.django_db
def test_connection_in_error_and_failed_latest_run_come_first(alice_client, user):
    broken = _connection(user, code="linkedin", label="Brand", status=Connection.Status.ERROR,
                         last_error="LinkedIn: the access token expired.")
    ok = _connection(user, label="Main")
    audience = Audience.objects.create(owner=user, name="VIPs", default_country="US", member_count=42)
    sync = Sync.objects.create(owner=user, audience=audience, connection=ok)
    _run(sync, SyncRun.Status.PARTIAL, error_message="Batch 3: invalid schema")
    healed = Sync.objects.create(owner=user, audience=audience, connection=broken)
    _run(healed, SyncRun.Status.FAILED, error_message="old failure")
    _run(healed, SyncRun.Status.SUCCEEDED, match_rate=0.71, sent=42)

    page = alice_client.get(reverse("dashboard")).content.decode()

    attention = page[page.index("Needs your attention"): page.index('id="connections-title"')]
    assert "LinkedIn: the access token expired." in attention
    assert "Batch 3: invalid schema" in attention
    assert "old failure" not in attention  # a later success clears a failed run
    assert "71 %" in page
    assert "EAAsecret-dashboard-token" not in page


@pytest.mark.django_db
def test_failed_import_needs_attention(alice_client, user):
    audience = Audience.objects.create(owner=user, name="Leads", default_country="GB")
    ImportJob.objects.create(owner=user, audience=audience, original_filename="x.csv",
                             status=ImportJob.Status.FAILED, error_message="The file is empty.")
    page = alice_client.get(reverse("dashboard")).content.decode()
    assert "The file is empty." in page


@pytest.mark.django_db
def test_dashboard_shows_nothing_of_another_user(client_for, user, other_user):
    _connection(other_user, label="Bob's account", status=Connection.Status.ERROR, last_error="bob's error")
    Audience.objects.create(owner=other_user, name="Bob audience", default_country="US")
    page = client_for(user).get(reverse("dashboard")).content.decode()
    assert "Bob" not in page and "bob's error" not in page


@pytest.mark.django_db
def test_dashboard_query_count_does_not_grow_with_data(client_for, user, django_assert_max_num_queries):
    conn = _connection(user)
    for i in range(15):
        audience = Audience.objects.create(owner=user, name=f"A{i}", default_country="US")
        sync = Sync.objects.create(owner=user, audience=audience, connection=conn)
        _run(sync, SyncRun.Status.FAILED, error_message="boom")
    client = client_for(user)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("dashboard")).status_code == 200


@pytest.mark.django_db
def test_the_first_steps_sample_file_is_a_one_click_button(user):
    response, audience = submit_sample_form(reverse("dashboard"), user)
    job = ImportJob.objects.get(audience=audience)
    assert response.status_code == 302 and response.url == reverse("import_mapping", kwargs={"import_pk": job.pk})
    assert job.original_filename == "sample-customers.csv"
