"""Token lifetimes: what each platform reports is stored and shown, revalidation renews what can be renewed and
records it, and a connection warns 14, 7 and 1 days ahead (one alert per step)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import responses
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from alerts.models import Incident
from credentials import services
from credentials.models import Connection, ConnectionEvent
from platforms.models import Platform
from sandbox.base import install_responses
from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.linkedin import FakeLinkedIn

pytestmark = pytest.mark.django_db
Kind = ConnectionEvent.Kind
DAY = 86_400


def connect_meta(user, token, label="Meta"):
    demo = DEMO_CREDENTIALS["meta"]
    return services.connect(owner=user, platform=Platform.objects.get(code="meta"), label=label,
                            config={"app_id": demo["app_id"], "ad_account_id": demo["ad_account_id"]},
                            secrets={"app_secret": demo["app_secret"], "access_token": token})


def test_a_system_user_token_reports_no_expiry(user, meta_graph):
    connection = connect_meta(user, DEMO_CREDENTIALS["meta"]["access_token"])
    assert connection.expires_at is None and connection.expiry_checked_at is not None
    assert connection.expiry_warning is None and connection.expiry_text == ""


def test_a_user_token_stores_its_expiry_and_the_connection_page_shows_it(user, alice_client, meta_graph):
    connection = connect_meta(user, meta_graph.issue(lifetime=12 * DAY + 60))
    assert connection.expires_in_days == 13 and connection.expiry_what == "access token"
    # Renewed by revalidation (Meta's exchange), so it warns only on its last day, not 14 days ahead.
    assert connection.expiry_renewable and connection.expiry_warning is None
    page = alice_client.get(reverse("connection_detail", args=[connection.pk])).content.decode()
    assert "expires in 13 days" in page and "renewed automatically" in page and "expiry-warning" not in page
    Connection.objects.filter(pk=connection.pk).update(expiry_renewable=False)
    page = alice_client.get(reverse("connection_detail", args=[connection.pk])).content.decode()
    assert 'class="alert alert-warn expiry-warning"' in page
    # debug_token was asked with the app access token, never with the token itself
    asks = [r for r in meta_graph.requests if r.path.endswith("/debug_token")]
    assert asks and all(r.param("access_token") == "100200300|demo-meta-app-secret" for r in asks)


def test_data_access_ending_first_is_what_expires_and_cannot_be_renewed(user, meta_graph):
    token = meta_graph.issue(lifetime=50 * DAY, data_access_expires_at=int(timezone.now().timestamp()) + 5 * DAY)
    connection = connect_meta(user, token)
    assert connection.expiry_what == "data access" and not connection.expiry_renewable
    assert connection.expires_in_days == 5 and connection.expiry_warning == 7


def test_revalidation_exchanges_a_meta_user_token_that_nears_its_end_and_records_it(user, meta_graph):
    old = meta_graph.issue(lifetime=10 * DAY)
    connection = connect_meta(user, old)
    outcome = services.revalidate_connection(connection_id=connection.pk)
    connection.refresh_from_db()
    assert outcome.ok and meta_graph.exchanges == 1
    assert connection.secrets["access_token"] != old and connection.expires_in_days == 60
    event = ConnectionEvent.objects.get(connection=connection, kind=Kind.REFRESHED)
    assert "new long-lived one" in event.message and old not in event.message
    # A token far from its end is left alone
    services.revalidate_connection(connection_id=connection.pk)
    assert meta_graph.exchanges == 1


def test_a_never_expiring_token_is_never_exchanged(user, meta_graph):
    connection = connect_meta(user, DEMO_CREDENTIALS["meta"]["access_token"])
    services.revalidate_connection(connection_id=connection.pk)
    assert meta_graph.exchanges == 0


@pytest.fixture
def linkedin(settings):
    fake = FakeLinkedIn()
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "linkedin": "https://li.test/linkedin/rest"}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, fake, "https://li.test/linkedin")
        install_responses(rsps, fake, "https://www.linkedin.com")
        yield fake


def connect_linkedin(user, **secrets):
    demo = DEMO_CREDENTIALS["linkedin"]
    return services.connect(owner=user, platform=Platform.objects.get(code="linkedin"), label="LI",
                            config={"client_id": demo["client_id"], "ad_account_id": demo["ad_account_id"]},
                            secrets={"client_secret": demo["client_secret"], "access_token": demo["access_token"],
                                     **secrets})


def test_a_pasted_linkedin_token_expires_as_introspection_says(user, linkedin):
    connection = connect_linkedin(user)
    assert connection.expiry_what == "access token" and connection.expires_in_days == 45
    assert not connection.expiry_renewable


def test_a_linkedin_refresh_token_renews_an_access_token_near_its_end(user, linkedin):
    refresh = linkedin.issue("refresh", ttl=300 * DAY)
    access = linkedin.issue(ttl=20 * DAY)
    connection = connect_linkedin(user, access_token=access, refresh_token=refresh)
    assert connection.expiry_what == "refresh token" and connection.expires_in_days == 300
    services.revalidate_connection(connection_id=connection.pk)
    connection.refresh_from_db()
    assert linkedin.refreshes == 1 and connection.secrets["access_token"] != access
    assert connection.secrets["refresh_token"] == refresh and connection.expires_in_days == 300
    assert ConnectionEvent.objects.filter(connection=connection, kind=Kind.REFRESHED).exists()


def test_a_revoked_refresh_token_is_recorded_and_the_connection_stays_active(user, linkedin):
    refresh = linkedin.issue("refresh", ttl=300 * DAY)
    connection = connect_linkedin(user, access_token=linkedin.issue(ttl=3 * DAY), refresh_token=refresh)
    linkedin.tokens[refresh]["status"] = "revoked"
    outcome = services.revalidate_connection(connection_id=connection.pk)
    connection.refresh_from_db()
    assert outcome.ok and connection.status == "active"
    failed = ConnectionEvent.objects.get(connection=connection, kind=Kind.REFRESH_FAILED)
    assert "keeps working until it expires" in failed.message and refresh not in failed.message


@pytest.mark.parametrize("days, step", [(30, None), (14, 14), (8, 14), (7, 7), (2, 7), (1, 1), (0.2, 1)])
def test_the_warning_steps(user, days, step):
    connection = Connection(owner=user, status="active", expires_at=timezone.now() + dt.timedelta(days=days))
    assert connection.expiry_warning == step
    connection.expires_at = timezone.now() - dt.timedelta(hours=1)
    assert connection.expiry_warning == 0 and connection.expiry_text == "expired"


def test_a_renewed_token_warns_only_on_its_last_day(user):
    connection = Connection(owner=user, status="active", expiry_renewable=True,
                            expires_at=timezone.now() + dt.timedelta(days=5))
    assert connection.expiry_warning is None
    connection.expires_at = timezone.now() + dt.timedelta(hours=20)
    assert connection.expiry_warning == 1


def test_one_alert_per_warning_step_not_one_per_check(user, linkedin, settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    connection = connect_linkedin(user, access_token=linkedin.issue(ttl=10 * DAY))
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            services.revalidate_connection(connection_id=connection.pk)
    incidents = Incident.objects.filter(owner=user, event="connection_expiring")
    assert incidents.count() == 1 and incidents.get().occurrences == 3
    assert len(mail.outbox) == 1 and "expires in 10 days" in mail.outbox[0].subject
    assert DEMO_CREDENTIALS["linkedin"]["client_secret"] not in mail.outbox[0].body
    assert ConnectionEvent.objects.filter(connection=connection, kind=Kind.EXPIRING).count() == 1
    # Closer to the end: the next step alerts once more, and the earlier incident closes.
    token = linkedin.issue(ttl=6 * DAY)
    Connection.objects.filter(pk=connection.pk).update(secrets={**connection.secrets, "access_token": token})
    with django_capture_on_commit_callbacks(execute=True):
        services.revalidate_connection(connection_id=connection.pk)
    assert len(mail.outbox) == 2 and "expires in 6 days" in mail.outbox[1].subject
    assert incidents.filter(resolved_at__isnull=True).count() == 1


def test_the_dashboard_warns_about_an_expiring_connection(user, alice_client):
    Connection.objects.create(owner=user, platform=Platform.objects.get(code="linkedin"), label="LI", config={},
                              secrets={"access_token": "x" * 20}, expires_at=timezone.now() + dt.timedelta(days=3),
                              expiry_what="access token")
    page = alice_client.get(reverse("dashboard")).content.decode()
    assert "Connection expiring: LinkedIn · LI" in page and "expires in 3 days" in page


# connect_platform --------------------------------------------------------------------------------------------

def _file(tmp_path, values) -> str:
    path = tmp_path / "creds.json"
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return str(path)


def test_connect_platform_connects_as_the_form_does_and_ends_with_a_json_line(user, meta_graph, tmp_path, capsys):
    demo = dict(DEMO_CREDENTIALS["meta"])
    demo.pop("label")
    demo["access_token"] = meta_graph.issue(lifetime=40 * DAY)
    demo["ad_account_id"] = "1234567890"  # the form's clean_ad_account_id adds act_
    call_command("connect_platform", "--owner", "alice", "--platform", "meta", "--label", "CLI",
                 "--credentials-file", _file(tmp_path, demo), "--json")
    out = capsys.readouterr().out
    line = json.loads(out.strip().splitlines()[-1])
    connection = Connection.objects.get(owner=user, label="CLI")
    assert line == {"connection_id": connection.pk, "platform": "meta", "label": "CLI", "status": "active",
                    "expires_at": connection.expires_at.isoformat()}
    assert connection.config["ad_account_id"] == "act_1234567890"
    assert demo["access_token"] not in out and demo["app_secret"] not in out
    assert ConnectionEvent.objects.filter(connection=connection, kind=Kind.CONNECTED).exists()


def test_connect_platform_exits_2_with_the_platforms_message_when_the_test_fails(user, meta_graph, tmp_path):
    demo = dict(DEMO_CREDENTIALS["meta"], access_token="EAA-wrong-token-123456")
    demo.pop("label")
    with pytest.raises(CommandError) as exc_info:
        call_command("connect_platform", "--owner", "alice", "--platform", "meta", "--label", "CLI",
                     "--credentials-file", _file(tmp_path, demo))
    assert exc_info.value.returncode == 2 and "Invalid OAuth access token" in str(exc_info.value)
    assert "EAA-wrong-token-123456" not in str(exc_info.value) and not Connection.objects.exists()


def test_connect_platform_refuses_bad_input_with_exit_1(user, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json: s3cr3t-value}")
    for argv, text in [
        (["--owner", "nobody", "--platform", "meta", "--label", "x", "--credentials-file", str(bad)], "No user"),
        (["--owner", "alice", "--platform", "myspace", "--label", "x", "--credentials-file", str(bad)], "Unknown"),
        (["--owner", "alice", "--platform", "meta", "--label", "x", "--credentials-file", str(bad)], "not JSON"),
        (["--owner", "alice", "--platform", "meta", "--label", "x", "--credentials-file",
          _file(tmp_path, {"app_id": "abc"})], "does not fit"),
    ]:
        with pytest.raises(CommandError, match=text) as exc_info:
            call_command("connect_platform", *argv)
        assert exc_info.value.returncode == 1 and "s3cr3t" not in str(exc_info.value)
