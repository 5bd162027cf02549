"""The dashboard and the safety rails: held runs first, a collapse on a platform with its figures, a platform copy
that could not be deleted; in a fixed number of queries."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audiences.models import Audience, PlatformDeletion
from credentials.models import Connection
from platforms.models import Platform
from syncs.models import Sync, SyncRun

pytestmark = pytest.mark.django_db


def _connection(owner, *, code="meta", label="Main", status=Connection.Status.ACTIVE, last_error=""):
    return Connection.objects.create(owner=owner, platform=Platform.objects.get(code=code), label=label,
                                     config={"ad_account_id": "act_1"}, secrets={"access_token": "EAAsecret-token-1"},
                                     status=status, last_error=last_error)


def _sync(owner, connection, name="VIPs", **fields):
    audience = Audience.objects.create(owner=owner, name=name, default_country="US", member_count=2_000)
    return Sync.objects.create(owner=owner, audience=audience, connection=connection, **fields)


def _attention(page: str) -> str:
    return page[page.index("Needs your attention"): page.index('id="connections-title"')]


def test_held_runs_come_first_with_what_they_would_remove(alice_client, user):
    broken = _connection(user, code="linkedin", label="Brand", status=Connection.Status.ERROR,
                         last_error="LinkedIn: the access token expired.")
    meta = _connection(user)
    failing = _sync(user, broken, name="Leads")
    SyncRun.objects.create(sync=failing, status=SyncRun.Status.FAILED, error_message="Batch 2 failed")
    sync = _sync(user, meta, hold_threshold=20)
    held = SyncRun.objects.create(sync=sync, status=SyncRun.Status.HELD, to_remove=1_000, held_before=3_000,
                                  error_message="Held for review: …")
    SyncRun.objects.filter(pk=held.pk).update(created_at=timezone.now() - timedelta(days=40))  # waits, however old

    attention = _attention(alice_client.get(reverse("dashboard")).content.decode())
    assert attention.index("Held for review: VIPs → Meta (Main)") < attention.index("Connection error")
    assert attention.index("Connection error") < attention.index("Batch 2 failed")
    assert ("this run would remove 1,000 of the 3,000 people Meta holds (33.3 %), more than the sync's 20 % "
            "threshold") in attention.replace("&#x27;", "'")
    assert reverse("sync_run_detail", args=[held.pk]) in attention


def test_a_collapse_on_the_platform_shows_its_before_and_after_until_a_later_run_succeeds(alice_client, user):
    sync = _sync(user, _connection(user))
    SyncRun.objects.create(sync=sync, status=SyncRun.Status.ATTENTION, size_before=1_993, audience_size=3,
                           error_message="Meta reports 1,993 → 3 people (-99.8 %), more than this run explains.")
    attention = _attention(alice_client.get(reverse("dashboard")).content.decode())
    assert "Sync needs attention: VIPs → Meta (Main)" in attention
    assert "Meta reports <span class=\"size-change\">1,993 → 3, −99.8 %</span> people" in attention

    SyncRun.objects.create(sync=sync, status=SyncRun.Status.SUCCEEDED)
    assert "Needs your attention" not in alice_client.get(reverse("dashboard")).content.decode()


def test_a_platform_copy_that_could_not_be_deleted_needs_attention(alice_client, user, other_user):
    common = {"former_audience_id": 7, "audience_name": "Old list", "platform_audience_id": "aud-1"}
    PlatformDeletion.objects.create(owner=user, destination="Meta · Main", status="failed",
                                    message="Meta refused (token expired).", **common)
    PlatformDeletion.objects.create(owner=user, destination="TikTok · Main", status="deleted", **common)
    PlatformDeletion.objects.create(owner=other_user, destination="Meta · Bobs", status="failed",
                                    message="bob's", **common)
    attention = _attention(alice_client.get(reverse("dashboard")).content.decode())
    assert "Not deleted: “Old list” on Meta · Main" in attention and "Meta refused (token expired)." in attention
    assert "TikTok" not in attention and "Bobs" not in attention


def test_the_query_count_stays_fixed_with_held_runs_collapses_and_deletions(client_for, user,
                                                                            django_assert_max_num_queries):
    meta = _connection(user)
    for i in range(10):
        sync = _sync(user, meta, name=f"A{i}")
        SyncRun.objects.create(sync=sync, status=SyncRun.Status.HELD if i % 2 else SyncRun.Status.ATTENTION,
                               to_remove=10, held_before=20, size_before=100, audience_size=1)
        PlatformDeletion.objects.create(owner=user, former_audience_id=100 + i, audience_name=f"D{i}",
                                        destination="Meta · Main", platform_audience_id=str(i), status="failed")
    client = client_for(user)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("dashboard")).content.decode()
    assert page.count("attention-held") == 5 and page.count("Sync needs attention") == 5
