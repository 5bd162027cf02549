"""The connection services, called directly: connect, update, test, disconnect, delete."""

from __future__ import annotations

import pytest

from credentials import services
from credentials.models import Connection, ConnectionEvent
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN
from tests.conftest import swap_adapter
from tests.credentials.conftest import APP_SECRET, GOOD_TOKEN, reload, tiktok_parts

pytestmark = pytest.mark.django_db
Kind = ConnectionEvent.Kind


def connect_tiktok(user, tiktok, token=GOOD_TOKEN, **overrides):
    label, config, secrets = tiktok_parts(token, **overrides)
    return services.connect(owner=user, platform=tiktok, label=label, config=config, secrets=secrets)


def test_connect_stores_a_working_connection_active_with_secrets_and_an_event(user, tiktok, scripted):
    connection = reload(connect_tiktok(user, tiktok))
    assert connection.status == Connection.Status.ACTIVE
    assert connection.last_validated_at is not None and connection.last_error == ""
    assert connection.secrets == {"app_secret": APP_SECRET, "access_token": GOOD_TOKEN}
    assert connection.config == {"app_id": "7000000000000000001", "advertiser_id": "7100000000000000001"}
    assert scripted.calls[0]["access_token"] == GOOD_TOKEN  # tested before it was stored
    event = ConnectionEvent.objects.get(connection=connection)
    assert event.kind == Kind.CONNECTED and event.owner == user
    assert "Advertiser 7100000000000000001" in event.message


@pytest.mark.parametrize("token, fragment", [
    ("bad-token-123456", "invalid or expired"),
    ("perm-token-123456", "does not exist"),
    ("down-token-123456", "Could not reach TikTok"),
    ("slow-token-123456", "throttling"),
    ("weird-token-123456", "could not understand"),
])
def test_connect_with_failing_validation_stores_nothing_and_says_why(user, tiktok, scripted, token, fragment):
    with pytest.raises(services.CredentialsRejected) as exc_info:
        connect_tiktok(user, tiktok, token)
    assert fragment in exc_info.value.message
    assert token not in exc_info.value.message and token not in str(exc_info.value)
    assert not Connection.objects.exists() and not ConnectionEvent.objects.exists()


def test_a_platform_message_echoing_the_token_is_scrubbed(user, tiktok, scripted):
    token = "echo-token-abcdef-9876"
    with pytest.raises(services.CredentialsRejected) as exc_info:
        connect_tiktok(user, tiktok, token)
    assert token not in exc_info.value.message
    assert "••••9876" in exc_info.value.message


def test_an_adapter_that_cannot_be_loaded_is_a_rejection_not_a_crash(user, tiktok, settings):
    swap_adapter(settings, "tiktok", "platforms.adapters.no_such_module.Nope")
    with pytest.raises(services.CredentialsRejected, match="unavailable"):
        connect_tiktok(user, tiktok)
    assert not Connection.objects.exists()


def test_duplicate_label_is_refused_before_calling_the_platform(user, tiktok, scripted):
    connect_tiktok(user, tiktok)
    scripted.calls.clear()
    with pytest.raises(services.DuplicateLabel) as exc_info:
        connect_tiktok(user, tiktok)
    assert exc_info.value.field == "label"
    assert scripted.calls == []
    assert Connection.objects.count() == 1


def test_several_accounts_of_one_platform_with_distinct_labels(user, other_user, tiktok, scripted):
    connect_tiktok(user, tiktok, label="EU brand")
    connect_tiktok(user, tiktok, label="US brand")
    connect_tiktok(other_user, tiktok, label="EU brand")  # labels are per user
    assert Connection.objects.filter(owner=user).count() == 2


def test_missing_secret_is_refused(user, tiktok, scripted):
    with pytest.raises(services.MissingSecrets) as exc_info:
        connect_tiktok(user, tiktok, access_token="")
    assert exc_info.value.names == ["access_token"]
    assert scripted.calls == []


def test_edit_with_blank_secrets_keeps_the_stored_values(user, alice_tiktok, scripted):
    services.update_connection(connection=alice_tiktok, label="Renamed", actor=user,
                               config={"app_id": "7000000000000000001", "advertiser_id": "7100000000000000002"},
                               secrets={"app_secret": "", "access_token": ""})
    connection = reload(alice_tiktok)
    assert connection.label == "Renamed"
    assert connection.secrets == {"app_secret": APP_SECRET, "access_token": GOOD_TOKEN}
    assert connection.config["advertiser_id"] == "7100000000000000002"
    assert scripted.calls[-1]["access_token"] == GOOD_TOKEN  # the merged credentials were tested
    event = ConnectionEvent.objects.filter(connection=connection).first()
    assert event.kind == Kind.UPDATED and "advertiser id" in event.message and "label" in event.message


def test_edit_with_a_failing_new_token_changes_nothing(user, alice_tiktok, scripted):
    with pytest.raises(services.CredentialsRejected):
        services.update_connection(connection=alice_tiktok, label="Main advertiser", actor=user,
                                   config=dict(alice_tiktok.config),
                                   secrets={"access_token": "bad-new-token-000"})
    connection = reload(alice_tiktok)
    assert connection.secrets["access_token"] == GOOD_TOKEN
    assert connection.status == Connection.Status.ACTIVE


def test_edit_to_a_label_already_used_is_a_duplicate(user, tiktok, scripted):
    connect_tiktok(user, tiktok, label="One")
    two = connect_tiktok(user, tiktok, label="Two")
    with pytest.raises(services.DuplicateLabel):
        services.update_connection(connection=two, label="One", config=dict(two.config), secrets={})


def test_disconnect_sets_status_and_erases_secrets(user, alice_tiktok):
    services.disconnect_connection(connection=alice_tiktok, actor=user)
    connection = reload(alice_tiktok)
    assert connection.status == Connection.Status.DISCONNECTED
    assert connection.secrets == {}
    assert connection.config  # identifiers are kept for reconnecting
    assert ConnectionEvent.objects.filter(connection=connection, kind=Kind.DISCONNECTED).count() == 1
    services.disconnect_connection(connection=connection, actor=user)  # idempotent
    assert ConnectionEvent.objects.filter(connection=connection, kind=Kind.DISCONNECTED).count() == 1


def test_reconnect_after_disconnect_needs_the_secrets_again(user, alice_tiktok, scripted):
    services.disconnect_connection(connection=alice_tiktok, actor=user)
    connection = reload(alice_tiktok)
    with pytest.raises(services.MissingSecrets) as exc_info:
        services.update_connection(connection=connection, label=connection.label, config=dict(connection.config),
                                   secrets={})
    assert set(exc_info.value.names) == {"app_secret", "access_token"}
    services.update_connection(connection=connection, label=connection.label, config=dict(connection.config),
                               secrets={"app_secret": APP_SECRET, "access_token": GOOD_TOKEN}, actor=user)
    connection = reload(connection)
    assert connection.status == Connection.Status.ACTIVE
    assert ConnectionEvent.objects.filter(connection=connection).first().kind == Kind.RECONNECTED


def test_test_now_failure_sets_error_and_success_recovers(user, alice_tiktok, scripted):
    Connection.objects.filter(pk=alice_tiktok.pk).update(secrets={"app_secret": APP_SECRET,
                                                                  "access_token": "bad-token-xyz-1"})
    outcome = services.test_connection(connection=reload(alice_tiktok), actor=user)
    connection = reload(alice_tiktok)
    assert outcome.result == "failed"
    assert connection.status == Connection.Status.ERROR and "invalid or expired" in connection.last_error
    assert ConnectionEvent.objects.filter(connection=connection).first().kind == Kind.TEST_FAILED

    Connection.objects.filter(pk=connection.pk).update(secrets={"app_secret": APP_SECRET, "access_token": GOOD_TOKEN})
    outcome = services.test_connection(connection=reload(connection), actor=user)
    connection = reload(connection)
    assert outcome.ok and connection.status == Connection.Status.ACTIVE and connection.last_error == ""
    assert ConnectionEvent.objects.filter(connection=connection).first().kind == Kind.TEST_OK


def test_test_now_on_a_disconnected_connection_is_skipped(user, alice_tiktok, scripted):
    services.disconnect_connection(connection=alice_tiktok, actor=user)
    scripted.calls.clear()
    outcome = services.test_connection(connection=reload(alice_tiktok), actor=user)
    assert outcome.result == "skipped" and scripted.calls == []


def test_delete_keeps_the_audit_trail(user, alice_tiktok):
    pk = alice_tiktok.pk
    services.delete_connection(connection=alice_tiktok, actor=user)
    assert not Connection.objects.filter(pk=pk).exists()
    event = ConnectionEvent.objects.get(kind=Kind.DELETED)
    assert event.connection is None and "Main advertiser" in event.connection_label


# The real Meta adapter through the fake Graph API -------------------------------------------------

def meta_parts(**overrides):
    data = {k: v for k, v in DEMO_CREDENTIALS["meta"].items()}
    data.update(overrides)
    label = data.pop("label")
    secrets = {"app_secret": data.pop("app_secret"), "access_token": data.pop("access_token")}
    return label, data, secrets


def test_connect_meta_through_the_fake_graph_api(user, meta, meta_graph):
    label, config, secrets = meta_parts()
    connection = services.connect(owner=user, platform=meta, label=label, config=config, secrets=secrets)
    assert reload(connection).status == Connection.Status.ACTIVE
    assert "Demo ad account" in ConnectionEvent.objects.get(connection=connection).message
    paths = [r.path for r in meta_graph.requests]
    assert any(path.endswith("/me") for path in paths)


def test_connect_meta_with_an_expired_token_shows_metas_reason(user, meta, meta_graph):
    label, config, secrets = meta_parts(access_token=EXPIRED_TOKEN)
    with pytest.raises(services.CredentialsRejected) as exc_info:
        services.connect(owner=user, platform=meta, label=label, config=config, secrets=secrets)
    assert exc_info.value.message.startswith("Meta:")
    assert not Connection.objects.exists()


def test_connect_meta_when_meta_is_down_stores_nothing(user, meta, meta_graph):
    from sandbox.base import FakeResponse, Fault

    meta_graph.inject(Fault(response=FakeResponse(status=503, body="Service Unavailable"), times=5))
    label, config, secrets = meta_parts()
    with pytest.raises(services.CredentialsRejected) as exc_info:
        services.connect(owner=user, platform=meta, label=label, config=config, secrets=secrets)
    assert exc_info.value.passing
    assert not Connection.objects.exists()
