"""Alerts: the settings page, incidents raised where things happen (one message each), e-mail through Django's mail
backend (locmem here) and a Slack-compatible webhook (a loopback receiver) through the egress guard."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from alerts import services
from alerts.models import AlertSettings, Delivery, Incident
from credentials.models import Connection
from syncs import runs
from syncs.models import Sync, SyncRun
from tests.sync.conftest import make_audience, tiktok_connection  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager(settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return django_capture_on_commit_callbacks


def test_the_settings_page_saves_channels_and_events(alice_client, user, receiver):
    page = alice_client.get(reverse("alert_settings"))
    assert page.status_code == 200 and "alice@example.com" in page.content.decode()
    response = alice_client.post(reverse("alert_settings"), {
        "email_enabled": "on", "email": "", "webhook_enabled": "on", "webhook_url": receiver.url,
        "events": ["run_failed", "connection_broken"]})
    assert response.status_code == 302
    saved = AlertSettings.objects.get(owner=user)
    assert saved.webhook_url == receiver.url and saved.events == ["connection_broken", "run_failed"]
    assert saved.address() == "alice@example.com"


@pytest.mark.parametrize("url", ["http://hooks.example.com/x", "https://10.0.0.5/hook", "https://169.254.169.254/",
                                 "https://127.0.0.1:6379/", "https://user:pw@hooks.example.com/x"])
def test_a_webhook_url_the_egress_guard_refuses_is_a_form_error(alice_client, user, url):
    response = alice_client.post(reverse("alert_settings"), {"webhook_enabled": "on", "webhook_url": url,
                                                             "events": ["run_failed"]})
    assert response.status_code == 200 and "has-error" in response.content.decode()
    assert "must" in response.content.decode() or "cannot be used" in response.content.decode()
    assert not AlertSettings.objects.filter(owner=user).exists()


def test_send_test_alert_goes_through_email_and_webhook(user, receiver, capsys):
    services.save_settings(owner=user, email_enabled=True, email="ops@example.com", webhook_enabled=True,
                           webhook_url=receiver.url, events=[])
    call_command("send_test_alert", "--user", "alice")
    assert "email: sent" in capsys.readouterr().out
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ops@example.com"]
    assert "Test alert" in mail.outbox[0].subject and "/alerts/" in mail.outbox[0].body
    (hook,) = receiver.requests
    payload = json.loads(hook.body)
    assert hook.method == "POST" and hook.headers["content-type"] == "application/json"
    assert payload["text"].startswith("*Test alert*") and payload["blocks"][0]["type"] == "section"


def test_send_test_alert_fails_loudly_without_channels_or_user(user):
    services.save_settings(owner=user, email_enabled=False, email="", webhook_enabled=False, webhook_url="", events=[])
    with pytest.raises(CommandError, match="No alert channel"):
        call_command("send_test_alert", "--user", "alice")
    with pytest.raises(CommandError, match="No user"):
        call_command("send_test_alert", "--user", "nobody")


def test_the_send_a_test_button_reports_each_channel(alice_client, user, receiver):
    receiver.statuses = [500]
    services.save_settings(owner=user, email_enabled=True, email="", webhook_enabled=True, webhook_url=receiver.url,
                           events=[])
    page = alice_client.post(reverse("alert_test"), follow=True).content.decode()
    assert "E-mail: test alert sent" in page
    assert "Webhook: the test alert was not sent — The webhook answered HTTP 500 Internal Server Error" in page
    assert "no_service" not in page  # the receiver's body is never shown


def test_a_redirecting_webhook_is_a_failure_and_never_followed(user, receiver):
    receiver.statuses = [302]
    services.save_settings(owner=user, email_enabled=False, email="", webhook_enabled=True, webhook_url=receiver.url,
                           events=[])
    (result,) = services.send_test(owner=user)
    assert not result.ok and "redirect" in result.message and "169.254" not in result.message
    assert len(receiver.requests) == 1


def test_a_failed_run_raises_one_incident_and_one_message(user, tiktok_connection, receiver, eager):  # noqa: F811
    services.save_settings(owner=user, email_enabled=True, email="", webhook_enabled=True, webhook_url=receiver.url,
                           events=["run_failed"])
    sync = Sync.objects.create(owner=user, audience=make_audience(user, 2, name="VIP customers"),
                               connection=tiktok_connection)
    run = SyncRun.objects.create(sync=sync, status="failed", error_message="TikTok: token tok-secret-123456 bad")
    with eager(execute=True):
        services.run_ended(run_id=run.pk)
        services.run_ended(run_id=run.pk)  # the same incident again: counted, not sent
    incident = Incident.objects.get(owner=user)
    assert incident.occurrences == 2 and incident.path == reverse("sync_run_detail", args=[run.pk])
    assert len(mail.outbox) == 1 and len(receiver.requests) == 1
    message = mail.outbox[0].subject + mail.outbox[0].body + receiver.requests[0].body.decode()
    assert "VIP customers" in message and "http://127.0.0.1:8000/audiences/runs/" in message
    assert "tok-secret" not in message and "bad" not in message  # never the platform's own text
    assert set(Delivery.objects.values_list("channel", "status")) == {("email", "sent"), ("webhook", "sent")}


def test_an_event_the_user_did_not_choose_sends_nothing(user, tiktok_connection, eager):  # noqa: F811
    services.save_settings(owner=user, email_enabled=True, email="", webhook_enabled=False, webhook_url="",
                           events=["connection_broken"])
    sync = Sync.objects.create(owner=user, audience=make_audience(user, 1), connection=tiktok_connection)
    run = SyncRun.objects.create(sync=sync, status="held", to_remove=5, held_before=6)
    with eager(execute=True):
        services.run_ended(run_id=run.pk)
    assert Incident.objects.filter(event="run_held").exists() and not mail.outbox


def test_a_webhook_that_fails_is_retried_and_email_is_not_sent_twice(user, tiktok_connection, receiver):  # noqa: F811
    services.save_settings(owner=user, email_enabled=True, email="", webhook_enabled=True, webhook_url=receiver.url,
                           events=["run_partial"])
    sync = Sync.objects.create(owner=user, audience=make_audience(user, 1), connection=tiktok_connection)
    run = SyncRun.objects.create(sync=sync, status="partial", sent=10, rejected=3)
    incident = services.run_ended(run_id=run.pk)
    receiver.statuses = [503]
    (failed,) = services.deliver(incident_id=incident.pk)
    assert failed.channel == "webhook" and failed.error == "The webhook answered HTTP 503 Service Unavailable."
    assert services.deliver(incident_id=incident.pk) == []
    assert len(mail.outbox) == 1 and len(receiver.requests) == 2
    assert Delivery.objects.get(channel="webhook").attempts == 2


def test_the_delivery_task_retries_on_the_default_queue_with_a_doubling_wait(user, tiktok_connection, receiver,  # noqa: F811
                                                                               settings, monkeypatch):
    from alerts.tasks import deliver_incident

    assert getattr(deliver_incident, "queue", None) is None  # no queue of its own: the default one
    services.save_settings(owner=user, email_enabled=False, email="", webhook_enabled=True, webhook_url=receiver.url,
                           events=["run_failed"])
    sync = Sync.objects.create(owner=user, audience=make_audience(user, 1), connection=tiktok_connection)
    incident = services.run_ended(run_id=SyncRun.objects.create(sync=sync, status="failed").pk)
    waits = []

    class Retrying(Exception):
        pass

    def retry(countdown):
        waits.append(countdown)
        return Retrying()

    monkeypatch.setattr(deliver_incident, "retry", retry)
    receiver.statuses = [500] * settings.ALERT_DELIVERY_ATTEMPTS
    for attempt in range(settings.ALERT_DELIVERY_ATTEMPTS):
        deliver_incident.push_request(retries=attempt)
        try:
            if attempt + 1 < settings.ALERT_DELIVERY_ATTEMPTS:
                with pytest.raises(Retrying):
                    deliver_incident.run(incident.pk)
            else:
                assert deliver_incident.run(incident.pk) == 1  # the last attempt gives up
        finally:
            deliver_incident.pop_request()
    base = settings.ALERT_RETRY_SECONDS
    assert waits == [base, base * 2, base * 4, base * 8][:settings.ALERT_DELIVERY_ATTEMPTS - 1]
    delivery = Delivery.objects.get(incident=incident)
    assert delivery.status == "failed" and delivery.attempts == settings.ALERT_DELIVERY_ATTEMPTS
    deliver_incident.push_request(retries=0)
    try:
        assert deliver_incident.run(incident.pk) == 0  # the receiver is back: sent
    finally:
        deliver_incident.pop_request()
    assert Delivery.objects.get(incident=incident).status == "sent"


def test_a_skipped_schedule_alerts_once_until_a_scheduled_run_starts(user, tiktok_connection, eager):  # noqa: F811
    sync = Sync.objects.create(owner=user, audience=make_audience(user, 1), connection=tiktok_connection,
                               schedule="daily")
    Connection.objects.filter(pk=tiktok_connection.pk).update(status="error")
    with eager(execute=True):
        assert runs.start_scheduled_run(sync_id=sync.pk) is None
        assert runs.start_scheduled_run(sync_id=sync.pk) is None
    incident = Incident.objects.get(event="schedule_skipped")
    assert incident.occurrences == 2 and len(mail.outbox) == 1 and "connection is error" in incident.body
    Connection.objects.filter(pk=tiktok_connection.pk).update(status="active")
    with eager(execute=False):
        assert runs.start_scheduled_run(sync_id=sync.pk) is not None
    incident.refresh_from_db()
    assert incident.resolved_at is not None


def test_the_engine_raises_an_incident_when_a_run_fails(user, tiktok_connection, eager):  # noqa: F811
    from syncs.engine import execute_run

    sync = Sync.objects.create(owner=user, audience=make_audience(user, 1), connection=tiktok_connection)
    run = SyncRun.objects.create(sync=sync)
    Connection.objects.filter(pk=tiktok_connection.pk).update(status="error")
    with eager(execute=True):
        execute_run(run_id=run.pk)
    assert SyncRun.objects.get(pk=run.pk).status == "failed"
    assert Incident.objects.get(owner=user).event == "run_failed" and len(mail.outbox) == 1


def test_a_connection_that_breaks_alerts_and_recovers_closes_it(user, eager):
    from credentials import services as credentials_services
    from platforms.models import Platform

    connection = Connection.objects.create(owner=user, platform=Platform.objects.get(code="meta"), label="EU",
                                           config={}, secrets={"access_token": "a-secret-token-1234"})
    with eager(execute=True):
        for message in ("token a-secret-token-1234", "again"):
            credentials_services.mark_auth_failed_during_sync(connection_id=connection.pk, message=message)
    incident = Incident.objects.get(event="connection_broken")
    assert incident.occurrences == 2 and len(mail.outbox) == 1
    assert "a-secret-token" not in mail.outbox[0].body and "Meta · EU" in mail.outbox[0].subject
    services.connection_recovered(connection)
    incident.refresh_from_db()
    assert incident.resolved_at is not None


def test_the_alerts_page_lists_only_the_users_own_incidents(alice_client, user, other_user):
    Incident.objects.create(owner=user, event="run_failed", key="run:1:failed", subject="Alice's run failed", body=".")
    Incident.objects.create(owner=other_user, event="run_failed", key="run:2:failed", subject="Bob's run failed",
                            body=".")
    page = alice_client.get(reverse("alert_settings")).content.decode()
    assert "Alice&#x27;s run failed" in page and "Bob" not in page


def test_a_failing_alert_never_breaks_what_raised_it(user, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "raise_incident", explode)
    assert services.run_ended(run_id=12345) is None  # no such run: nothing, no error
    connection = Connection(pk=1, owner=user, label="x")
    assert services.connection_broke(connection) is None
