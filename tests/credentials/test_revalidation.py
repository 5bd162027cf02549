"""Daily re-validation: the task, the fan-out, the beat schedule row and the management command."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from credentials import services, tasks
from credentials.models import Connection, ConnectionEvent
from platforms.errors import AuthError
from sandbox.credentials import DEMO_CREDENTIALS
from tests.credentials.conftest import APP_SECRET, reload

pytestmark = pytest.mark.django_db
Kind = ConnectionEvent.Kind
Status = Connection.Status


def set_token(connection, token):
    Connection.objects.filter(pk=connection.pk).update(secrets={"app_secret": APP_SECRET, "access_token": token})


def backdate(connection):
    old = timezone.now() - timedelta(days=2)
    Connection.objects.filter(pk=connection.pk).update(last_validated_at=old)
    return old


def kinds(connection):
    return list(ConnectionEvent.objects.filter(connection=connection).values_list("kind", flat=True))


def test_a_working_connection_gets_a_fresh_last_validated_at(alice_tiktok):
    old = backdate(alice_tiktok)
    assert tasks.revalidate_connection(alice_tiktok.pk) == "ok"
    connection = reload(alice_tiktok)
    assert connection.status == Status.ACTIVE and connection.last_validated_at > old
    assert kinds(connection)[0] == Kind.REVALIDATED_OK


def test_a_rejected_token_flips_the_status_to_error_with_the_platforms_message(alice_tiktok):
    old = backdate(alice_tiktok)
    set_token(alice_tiktok, "bad-revoked-000")
    assert tasks.revalidate_connection(alice_tiktok.pk) == "failed"
    connection = reload(alice_tiktok)
    assert connection.status == Status.ERROR
    assert connection.last_error == "TikTok: Access token is invalid or expired (40105)."
    assert connection.last_validated_at == old
    event = ConnectionEvent.objects.filter(connection=connection).first()
    assert event.kind == Kind.REVALIDATION_FAILED and "invalid or expired" in event.message and event.actor is None


def test_a_permanent_error_flips_to_error_too(alice_tiktok):
    set_token(alice_tiktok, "perm-000")
    tasks.revalidate_connection(alice_tiktok.pk)
    assert reload(alice_tiktok).status == Status.ERROR


@pytest.mark.parametrize("token", ["down-500", "slow-429", "weird-crash"])
def test_an_unreachable_platform_does_not_flip_the_status(alice_tiktok, token):
    old = backdate(alice_tiktok)
    set_token(alice_tiktok, token)
    assert tasks.revalidate_connection(alice_tiktok.pk) == "unreachable"
    connection = reload(alice_tiktok)
    assert connection.status == Status.ACTIVE
    assert connection.last_error.startswith("Not checked at ")
    assert connection.last_validated_at == old
    assert kinds(connection) == [Kind.CONNECTED]  # no failure event for an outage


def test_an_error_connection_recovers_when_the_platform_accepts_it_again(alice_tiktok):
    set_token(alice_tiktok, "bad-1")
    tasks.revalidate_connection(alice_tiktok.pk)
    set_token(alice_tiktok, "good-again-1")
    assert tasks.revalidate_connection(alice_tiktok.pk) == "ok"
    connection = reload(alice_tiktok)
    assert connection.status == Status.ACTIVE and connection.last_error == ""
    assert kinds(connection)[0] == Kind.RECONNECTED


def test_disconnected_connections_are_skipped(alice_tiktok, scripted):
    services.disconnect_connection(connection=alice_tiktok)
    scripted.calls.clear()
    assert tasks.revalidate_connection(alice_tiktok.pk) == "skipped"
    assert scripted.calls == []
    assert tasks.revalidate_connection(999_999) == "missing"


def test_an_edit_during_the_check_wins_over_the_stale_result(alice_tiktok, scripted, monkeypatch):
    def validate_while_the_user_edits(self):
        connection = Connection.objects.get(pk=alice_tiktok.pk)
        connection.label = "Edited meanwhile"
        connection.save()
        raise AuthError("stale token")

    monkeypatch.setattr(scripted, "validate_credentials", validate_while_the_user_edits)
    assert tasks.revalidate_connection(alice_tiktok.pk) == "stale"
    connection = reload(alice_tiktok)
    assert connection.status == Status.ACTIVE and connection.last_error == ""


@pytest.fixture
def eager_celery():
    from activation_manager.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


def test_revalidate_all_fans_out_over_active_and_error_connections_only(user, tiktok, scripted, eager_celery):
    from tests.credentials.conftest import tiktok_parts

    ids = {}
    for label, token in (("ok", "good-1"), ("broken", "good-2"), ("gone", "good-3")):
        _, config, secrets = tiktok_parts(token)
        ids[label] = services.connect(owner=user, platform=tiktok, label=label, config=config, secrets=secrets).pk
    Connection.objects.filter(pk=ids["broken"]).update(status=Status.ERROR)
    services.disconnect_connection(connection=Connection.objects.get(pk=ids["gone"]))
    scripted.calls.clear()
    assert tasks.revalidate_all_connections() == 2
    assert sorted(call["access_token"] for call in scripted.calls) == ["good-1", "good-2"]
    assert Connection.objects.get(pk=ids["broken"]).status == Status.ACTIVE
    assert Connection.objects.get(pk=ids["gone"]).status == Status.DISCONNECTED


def test_beat_schedule_row_exists_after_migrate():
    from django_celery_beat.models import PeriodicTask

    from activation_manager.celery import app

    task = PeriodicTask.objects.get(name="Re-validate every connection")
    assert task.enabled and task.task == "credentials.revalidate_all_connections"
    assert task.schedule.run_every == timedelta(hours=24)
    app.loader.import_default_modules()
    assert task.task in app.tasks  # the name beat sends is a registered task


def test_revalidation_through_the_real_meta_adapter_and_fake(user, meta, meta_graph):
    creds = dict(DEMO_CREDENTIALS["meta"])
    label = creds.pop("label")
    secrets = {"app_secret": creds.pop("app_secret"), "access_token": creds.pop("access_token")}
    connection = services.connect(owner=user, platform=meta, label=label, config=creds, secrets=secrets)
    assert tasks.revalidate_connection(connection.pk) == "ok"
    meta_graph.access_token = "a-different-token-now"  # the token was revoked on Meta's side
    assert tasks.revalidate_connection(connection.pk) == "failed"
    connection = reload(connection)
    assert connection.status == Status.ERROR and connection.last_error.startswith("Meta:")


def test_management_command_revalidates_all_or_one(alice_tiktok):
    out = StringIO()
    call_command("revalidate_connections", stdout=out)
    assert f"connection {alice_tiktok.pk}: ok" in out.getvalue()
    assert "Checked 1 connection(s): 1 ok." in out.getvalue()
    set_token(alice_tiktok, "bad-2")
    out = StringIO()
    call_command("revalidate_connections", "--connection", str(alice_tiktok.pk), stdout=out)
    assert "failed" in out.getvalue() and reload(alice_tiktok).status == Status.ERROR
    with pytest.raises(CommandError, match="No connection"):
        call_command("revalidate_connections", "--connection", "987654", stdout=StringIO())
