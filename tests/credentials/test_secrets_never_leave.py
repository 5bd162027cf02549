"""A stored secret never reaches a page, a partial, the admin, an event or a log line."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from credentials import services
from credentials.models import Connection, ConnectionEvent
from credentials.tasks import revalidate_connection
from tests.credentials.conftest import APP_SECRET, GOOD_TOKEN, tiktok_form

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
SECRETS = (GOOD_TOKEN, APP_SECRET)


def assert_clean(text: str, where: str):
    for secret in SECRETS:
        assert secret not in text, f"a secret leaked into {where}"
        assert secret[:12] not in text, f"part of a secret leaked into {where}"


def test_no_page_partial_admin_event_or_log_line_carries_a_secret(client, user, tiktok, scripted, caplog):
    caplog.set_level(logging.DEBUG)
    client.force_login(user)
    response = client.post(reverse("connection_create", args=["tiktok"]), tiktok_form(), **HX)
    assert response.status_code == 200
    connection = Connection.objects.get(owner=user)
    pk = connection.pk
    services.test_connection(connection=connection, actor=user)
    revalidate_connection(pk)  # the task body, run in-process

    pages = [
        (reverse("platform_list"), {}),
        (reverse("dashboard"), {}),
        (reverse("connection_detail", args=[pk]), {}),
        (reverse("connection_edit", args=[pk]), HX),
        (reverse("connection_edit", args=[pk]), {}),
        (reverse("connection_create", args=["tiktok"]), HX),
        (reverse("platform_card", args=["tiktok"]), HX),
    ]
    for url, headers in pages:
        response = client.get(url, **headers)
        assert response.status_code == 200, url
        assert_clean(response.content.decode(), url)
    for name in ("connection_test",):
        assert_clean(client.post(reverse(name, args=[pk]), **HX).content.decode(), name)
    # A failing edit re-renders the form: the new (rejected) secret is not echoed either.
    rejected = "bad-token-REJECTED-5555"
    page = client.post(reverse("connection_edit", args=[pk]), tiktok_form(rejected), **HX).content.decode()
    assert rejected not in page and "invalid or expired" in page

    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123456")
    client.force_login(admin)
    for url in (
        reverse("admin:credentials_connection_changelist"),
        reverse("admin:credentials_connection_change", args=[pk]),
        reverse("admin:credentials_connectionevent_changelist"),
        reverse("admin:credentials_connectionevent_change", args=[ConnectionEvent.objects.first().pk]),
        reverse("admin:platforms_platform_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_clean(response.content.decode(), url)
    change = client.get(reverse("admin:credentials_connection_change", args=[pk])).content.decode()
    assert "Access token ••••0001" in change
    assert 'name="secrets"' not in change

    for event in ConnectionEvent.objects.all():
        assert_clean(event.message + event.connection_label, f"event {event.kind}")
    assert_clean(Connection.objects.get(pk=pk).last_error, "last_error")
    assert_clean("\n".join(r.getMessage() for r in caplog.records), "the logs")
    assert_clean(caplog.text, "the logs")


def test_repr_of_an_adapter_and_a_connection_carries_no_secret(alice_tiktok):
    assert_clean(repr(alice_tiktok.adapter()), "adapter repr")
    assert_clean(repr(alice_tiktok) + str(alice_tiktok), "connection repr")


def test_the_task_takes_an_id_not_credentials(alice_tiktok, monkeypatch):
    from credentials import tasks

    sent = []
    monkeypatch.setattr(tasks.revalidate_connection, "delay", lambda *a, **kw: sent.append((a, kw)))
    tasks.revalidate_all_connections()
    assert sent == [((alice_tiktok.pk,), {})]


def test_dumpdata_serialises_no_plaintext(alice_tiktok):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("dumpdata", "credentials.connection", stdout=out)
    assert_clean(out.getvalue(), "dumpdata")
