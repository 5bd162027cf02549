"""Secrets at rest: ciphertext only in the database, loud failure on a wrong key, and key rotation."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import CommandError, call_command
from django.db import connection as db

from credentials.models import Connection, ConnectionEvent
from platforms.models import Platform

pytestmark = pytest.mark.django_db

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
TOKEN = "plaintext-token-NEVER-in-the-db-4242"


def raw_secrets(pk: int) -> bytes:
    with db.cursor() as cursor:
        cursor.execute("SELECT secrets FROM credentials_connection WHERE id = %s", [pk])
        return bytes(cursor.fetchone()[0])


def make(user, label="Main", token=TOKEN):
    return Connection.objects.create(owner=user, platform=Platform.objects.get(code="meta"), label=label,
                                     config={"ad_account_id": "act_1"}, secrets={"access_token": token})


def test_round_trip_and_only_ciphertext_in_the_column(user):
    connection = make(user)
    raw = raw_secrets(connection.pk)
    assert TOKEN.encode() not in raw and b"access_token" not in raw
    assert raw.startswith(b"gAAAAA")  # a Fernet token
    assert Connection.objects.get(pk=connection.pk).secrets == {"access_token": TOKEN}


def test_reading_with_a_wrong_key_fails_loudly(user, settings):
    connection = make(user)
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(InvalidToken):
        Connection.objects.get(pk=connection.pk)


def test_no_key_configured_is_a_clear_configuration_error(user, settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.CREDENTIALS_KEYS = []
    with pytest.raises(ImproperlyConfigured, match="CREDENTIALS_KEYS"):
        make(user)


def test_rotation_lets_the_old_key_be_dropped(user, settings):
    settings.CREDENTIALS_KEYS = [KEY_A]
    ids = [make(user, label=f"c{i}", token=f"{TOKEN}-{i}").pk for i in range(5)]
    before = {pk: raw_secrets(pk) for pk in ids}

    settings.CREDENTIALS_KEYS = [KEY_B, KEY_A]  # the new key first, the old one still readable
    out = StringIO()
    call_command("rotate_credential_keys", "--batch-size", "2", stdout=out)
    assert "Re-encrypted 5 connection(s); 0 already under the newest key." in out.getvalue()
    for pk in ids:
        raw = raw_secrets(pk)
        assert raw != before[pk] and TOKEN.encode() not in raw
        Fernet(KEY_B.encode()).decrypt(raw)  # now under B
    assert ConnectionEvent.objects.filter(kind=ConnectionEvent.Kind.KEY_ROTATED).count() == 5
    assert all("Meta" in e.connection_label and TOKEN not in e.message for e in ConnectionEvent.objects.all())

    out = StringIO()
    call_command("rotate_credential_keys", stdout=out)  # idempotent
    assert "Re-encrypted 0 connection(s); 5 already under the newest key." in out.getvalue()

    settings.CREDENTIALS_KEYS = [KEY_B]  # the old key is gone
    assert sorted(c.secrets["access_token"] for c in Connection.objects.filter(pk__in=ids)) == [
        f"{TOKEN}-{i}" for i in range(5)
    ]


def test_rotation_reports_rows_no_key_can_read(user, settings):
    settings.CREDENTIALS_KEYS = [KEY_A]
    pk = make(user).pk
    settings.CREDENTIALS_KEYS = [KEY_B]
    with pytest.raises(CommandError, match=f"ids: {pk}"):
        call_command("rotate_credential_keys", stdout=StringIO())
    settings.CREDENTIALS_KEYS = [KEY_A]
    assert Connection.objects.get(pk=pk).secrets == {"access_token": TOKEN}  # left untouched
