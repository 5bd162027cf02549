"""Google's reports on the Data Manager requests of a run (retrieve_request_status), read later by the
syncs.check_platform_reports task and shown on the run page; the rejection reasons a batch's answer gave."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from syncs import platform_reports
from syncs.models import PlatformRequest, SyncRun
from tests.sync.conftest import make_audience, make_sync
from tests.sync.test_google_datamanager_engine import connection, google, run, servers, small_batches  # noqa: F401

pytestmark = pytest.mark.django_db


def later(seconds):
    return timezone.now() + datetime.timedelta(seconds=seconds)


def test_the_runs_requests_are_asked_about_after_the_wait_and_shown(google, user, connection, sleeps,  # noqa: F811
                                                                   free_limiter, settings, client, monkeypatch):
    settings.PLATFORM_REPORT_AFTER = 1800
    monkeypatch.setattr(google, "process_immediately", False)  # Google processes a request after answering it
    audience = make_audience(user, 120)
    sync = make_sync(user, audience, connection, mode="mirror")
    result = run(sync, sleeps, free_limiter)
    assert result.status == SyncRun.Status.SUCCEEDED, result.error_message
    requests = list(PlatformRequest.objects.filter(run=result))
    assert len(requests) == 3 and all(r.kind == "add" and not r.done for r in requests)  # 50 + 50 + 20

    assert platform_reports.check_due() == 0  # Google: wait about 30 minutes before asking
    assert google.calls_to("RetrieveRequestStatus") == []
    assert platform_reports.check_due(now=later(1801)) == 3  # still processing: asked again later
    assert not PlatformRequest.objects.filter(done=True).exists()
    assert all(r.next_check_at > later(1801 + 3000) for r in PlatformRequest.objects.all())  # then an hour later

    google.finish_processing()
    assert platform_reports.check_due(now=later(1801 + 3700)) == 3
    reported = list(PlatformRequest.objects.filter(run=result))
    assert all(r.done and r.rejected == 0 and r.report for r in reported)
    assert "record(s)" in reported[0].report[0]
    assert platform_reports.check_due(now=later(9 * 3600)) == 0  # done: never asked again

    client.force_login(user)
    page = client.get(reverse("sync_run_detail", kwargs={"run_pk": result.pk})).content.decode()
    assert "3 of 3 requests reported" in page
    assert "success" in page and "record(s)" in page


def test_rejections_by_reason_reach_the_run_page(google, user, connection, sleeps, free_limiter,  # noqa: F811
                                                 settings, client):
    settings.PLATFORM_REPORT_AFTER = 0
    connection.config = {**connection.config, "consent_ad_personalization": "DENIED"}
    connection.save()
    audience = make_audience(user, 30, name="Denied")
    sync = make_sync(user, audience, connection)
    result = run(sync, sleeps, free_limiter)
    platform_reports.check_due(now=later(1))
    (request,) = PlatformRequest.objects.filter(run=result)
    assert request.done and request.rejected == 30
    client.force_login(user)
    page = client.get(reverse("sync_run_detail", kwargs={"run_pk": result.pk})).content.decode()
    assert "30 records rejected by Google" in page and "DENIED_CONSENT" in page


def test_a_platform_that_never_reports_is_given_up_on(google, user, connection, sleeps, free_limiter,  # noqa: F811
                                                      settings, monkeypatch):
    settings.PLATFORM_REPORT_AFTER = 60
    monkeypatch.setattr(google, "process_immediately", False)
    audience = make_audience(user, 10, name="Silent")
    sync = make_sync(user, audience, connection)
    result = run(sync, sleeps, free_limiter)
    platform_reports.check_due(now=later(25 * 3600))
    (request,) = PlatformRequest.objects.filter(run=result)
    assert request.done and "No final report" in request.report[-1]


def test_other_users_cannot_read_a_runs_reports(google, user, connection, sleeps, free_limiter,  # noqa: F811
                                                django_user_model, client):
    audience = make_audience(user, 10, name="Mine")
    result = run(make_sync(user, audience, connection), sleeps, free_limiter)
    client.force_login(django_user_model.objects.create_user("mallory", password="x" * 12))
    assert client.get(reverse("sync_run_reports", kwargs={"run_pk": result.pk})).status_code == 404


def test_a_batchs_rejection_reasons_are_kept_on_the_run_and_shown(user, sleeps, free_limiter, client,
                                                                  tiktok_connection):
    from platforms.adapters.base import BatchResult
    from syncs import engine
    from tests.sync.conftest import ScriptedAdapter, new_run

    class Refusing(ScriptedAdapter):
        def add_members(self, audience_id, batch, *, session=None):
            super().add_members(audience_id, batch, session=session)
            return BatchResult(received=len(batch), invalid=1, messages=("1 member refused: email not valid",))

    audience = make_audience(user, 25, name="Refused")
    sync = make_sync(user, audience, tiktok_connection)
    result = engine.execute_run(run_id=new_run(sync).pk, adapter=Refusing(), sleep=sleeps, limiter=free_limiter)
    assert result.rejected == 3 and result.rejection_reasons == {"1 member refused: email not valid": 3}
    client.force_login(user)
    page = client.get(reverse("sync_run_detail", kwargs={"run_pk": result.pk})).content.decode()
    assert "Why TikTok rejected members" in page and "email not valid" in page and "(3 batches)" in page
