"""A sync never sends one user's audience with another user's credentials (model, services, admin), and changing a
sync's connection forgets the old platform audience, after a confirmation."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.urls import reverse

from credentials.models import Connection
from platforms.models import Platform
from syncs import services
from syncs.models import Sync, SyncMember, SyncRun
from tests.sync.conftest import make_audience, make_sync

pytestmark = pytest.mark.django_db


def connection_of(owner, label="Other account"):
    return Connection.objects.create(owner=owner, platform=Platform.objects.get(code="tiktok"), label=label,
                                     config={"advertiser_id": "adv-9"}, secrets={"access_token": "tok-other-98765"})


@pytest.fixture
def operator(client):
    staff = get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password-123")
    client.force_login(staff)
    return client


def change_form(sync: Sync, **changes) -> dict:
    data = {"owner": sync.owner_id, "audience": sync.audience_id, "connection": sync.connection_id,
            "mode": sync.mode, "schedule": sync.schedule, "schedule_time": "06:00", "schedule_weekday": 0,
            "schedule_timezone": "UTC", "hold_threshold": sync.hold_threshold, "periodic_task": ""}
    data.update(changes)
    return data


def test_the_model_refuses_a_sync_across_owners(user, other_user):
    theirs = connection_of(other_user)
    with pytest.raises(ValidationError, match="same user"):
        Sync.objects.create(owner=user, audience=make_audience(user, 1), connection=theirs)
    with pytest.raises(ValidationError, match="same user"):
        Sync.objects.create(owner=other_user, audience=make_audience(user, 1, name="B"), connection=theirs)
    assert not Sync.objects.exists()


def test_the_admin_refuses_another_users_connection_and_changes_nothing(operator, user, other_user,
                                                                        tiktok_connection):
    sync = make_sync(user, make_audience(user, 2), tiktok_connection)
    theirs = connection_of(other_user)
    page = operator.post(reverse("admin:syncs_sync_change", args=[sync.pk]),
                         change_form(sync, connection=theirs.pk, confirm_new_connection="on"))
    assert page.status_code == 200 and "same user" in page.content.decode()
    assert Sync.objects.get(pk=sync.pk).connection_id == tiktok_connection.pk


def test_changing_the_connection_in_the_admin_needs_a_confirmation_then_forgets_the_platform_audience(
        operator, user, tiktok_connection):
    audience = make_audience(user, 3)
    sync = make_sync(user, audience, tiktok_connection)
    Sync.objects.filter(pk=sync.pk).update(platform_audience_id="seg-123", confirmed_generation=1)
    SyncMember.objects.create(sync=sync, person=b"p" * 12, generation=1)
    sync.refresh_from_db()
    other = connection_of(user, label="Second account")

    page = operator.post(reverse("admin:syncs_sync_change", args=[sync.pk]), change_form(sync, connection=other.pk))
    assert page.status_code == 200
    text = page.content.decode()
    assert "seg-123" in text and "creates a new audience" in text  # says what it would mean
    sync.refresh_from_db()
    assert (sync.connection_id, sync.platform_audience_id) == (tiktok_connection.pk, "seg-123")

    page = operator.post(reverse("admin:syncs_sync_change", args=[sync.pk]),
                         change_form(sync, connection=other.pk, confirm_new_connection="on"))
    assert page.status_code == 302
    sync.refresh_from_db()
    assert (sync.connection_id, sync.platform_audience_id, sync.confirmed_generation) == (other.pk, "", None)
    assert not SyncMember.objects.filter(sync_id=sync.pk).exists()  # the new account holds nobody yet


def test_a_sync_without_a_platform_audience_changes_connection_without_a_question(user, tiktok_connection):
    sync = make_sync(user, make_audience(user, 1), tiktok_connection)
    other = connection_of(user)
    assert services.change_connection(sync=sync, connection=other).connection_id == other.pk


def test_the_connection_does_not_change_under_a_pending_run(user, tiktok_connection):
    sync = make_sync(user, make_audience(user, 1), tiktok_connection)
    SyncRun.objects.create(sync=sync, status=SyncRun.Status.HELD)
    with pytest.raises(services.SyncError, match="queued, running or held"):
        services.change_connection(sync=sync, connection=connection_of(user), confirmed=True)
    with pytest.raises(services.SyncError, match="same user"):
        services.change_connection(sync=sync, connection=connection_of(get_user_model().objects.create(
            username="mallory")), confirmed=True)
