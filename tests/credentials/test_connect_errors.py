"""A refused connect or edit: the field at fault is marked, the other secrets are kept for the retry
(encrypted in the session, never rendered), and the platform's message reads right before a connection exists."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.sessions.models import Session
from django.test import RequestFactory
from django.urls import reverse

from credentials import drafts
from credentials.fields import credentials_cipher
from credentials.models import Connection
from sandbox.credentials import DEMO_CREDENTIALS
from tests.credentials.conftest import APP_SECRET, GOOD_TOKEN, reload, tiktok_form

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
META = DEMO_CREDENTIALS["meta"]


def html(response) -> str:
    return response.content.decode()


def field_block(page: str, name: str) -> str:
    """The <div class="field ..."> that holds the input called ``name``."""
    at = page.index(f'name="{name}"')
    start = page.rindex('<div class="field', 0, at)
    ends = [i for i in (page.find('<div class="field', at), page.find('<div class="row">', at)) if i != -1]
    return page[start:min(ends)]


def session_text(client) -> str:
    """Everything the session store holds for this client, decoded."""
    session = Session.objects.get(session_key=client.session.session_key)
    return session.session_data + json.dumps(session.get_decoded())


def test_a_wrong_meta_token_marks_the_token_keeps_the_app_secret_and_the_retry_needs_only_the_token(
        alice_client, user, meta, meta_graph):
    url = reverse("connection_create", args=["meta"])
    wrong = dict(META, access_token="EAA-wrong-token-1234")
    page = html(alice_client.post(url, wrong, **HX))

    assert not Connection.objects.exists()
    assert 'class="alert alert-error" role="alert"' in page
    # The platform's words then our hint, as sentences, and no "update the connection" before one exists.
    assert "Cannot parse access token. Generate a new access token" in page
    assert "update the connection" not in page
    token = field_block(page, "access_token")
    assert "has-error" in token and "Meta refused this value: enter it again." in token
    assert 'aria-invalid="true"' in token
    secret = field_block(page, "app_secret")
    assert "has-error" not in secret and "is-kept" in secret and "Kept from your last attempt" in secret
    # Neither secret reaches the page, nor the session store in plain text.
    for value in (META["app_secret"], "EAA-wrong-token-1234"):
        assert value not in page
        assert value not in session_text(alice_client)

    retry = dict(META, app_secret="")  # the kept app secret fills the blank field
    page = html(alice_client.post(url, retry, **HX))
    connection = Connection.objects.get(owner=user, platform=meta)
    assert connection.secrets == {"app_secret": META["app_secret"], "access_token": META["access_token"]}
    assert "badge-active" in page
    assert drafts.SESSION_KEY not in alice_client.session or not alice_client.session[drafts.SESSION_KEY]


def test_a_wrong_app_secret_marks_the_app_secret_and_keeps_the_token(alice_client, meta, meta_graph):
    page = html(alice_client.post(reverse("connection_create", args=["meta"]),
                                  dict(META, app_secret="not-the-app-secret"), **HX))
    assert "Check the App secret" in page
    assert "Meta refused this value" in field_block(page, "app_secret")
    assert "is-kept" in field_block(page, "access_token")
    assert "has-error" not in field_block(page, "access_token")
    assert META["access_token"] not in page


def test_the_kept_secret_is_in_the_session_only_as_ciphertext_of_the_credentials_cipher(alice_client, user, tiktok,
                                                                                        scripted):
    alice_client.post(reverse("connection_create", args=["tiktok"]), tiktok_form("bad-token-0000"), **HX)
    token = alice_client.session[drafts.SESSION_KEY]["tiktok:new"]
    assert APP_SECRET not in token and "bad-token" not in token
    payload = json.loads(credentials_cipher().decrypt(token.encode()))
    assert payload == {"user": user.pk, "secrets": {"app_secret": APP_SECRET}}  # never the refused token


def test_a_typed_value_replaces_the_kept_one(alice_client, user, tiktok, scripted):
    url = reverse("connection_create", args=["tiktok"])
    alice_client.post(url, tiktok_form("bad-token-0000"), **HX)
    alice_client.post(url, tiktok_form(GOOD_TOKEN, app_secret="a-newer-app-secret"), **HX)
    assert reload(Connection.objects.get(owner=user)).secrets["app_secret"] == "a-newer-app-secret"


def test_a_form_error_keeps_the_secrets_typed_so_fixing_the_id_is_enough(alice_client, user, tiktok, scripted):
    url = reverse("connection_create", args=["tiktok"])
    page = html(alice_client.post(url, tiktok_form(advertiser_id="not-digits"), **HX))
    assert "must contain digits only" in page and scripted.calls == []  # the platform was not asked
    assert "is-kept" in field_block(page, "access_token") and "is-kept" in field_block(page, "app_secret")
    assert GOOD_TOKEN not in page and APP_SECRET not in page
    alice_client.post(url, tiktok_form("", app_secret=""), **HX)
    assert Connection.objects.get(owner=user).secrets == {"app_secret": APP_SECRET, "access_token": GOOD_TOKEN}


def test_an_unreachable_platform_keeps_every_secret_for_the_retry(alice_client, user, tiktok, scripted):
    url = reverse("connection_create", args=["tiktok"])
    page = html(alice_client.post(url, tiktok_form("down-1234"), **HX))
    assert "Could not reach TikTok" in page
    assert "has-error" not in field_block(page, "access_token")
    assert "is-kept" in field_block(page, "access_token")


def test_a_refusal_that_names_no_field_keeps_nothing(alice_client, tiktok, scripted):
    url = reverse("connection_create", args=["tiktok"])
    page = html(alice_client.post(url, tiktok_form("perm-1234", advertiser_id="7100000000000000009"), **HX))
    assert "advertiser_id does not exist" in page
    assert "Check this value" in field_block(page, "advertiser_id")  # named by its field name
    # An identifier at fault says nothing against the secrets: they are kept.
    assert "is-kept" in field_block(page, "app_secret")
    scripted_error = tiktok_form("echo-zzzz")  # "token echo-zzzz rejected": no field named
    page = html(alice_client.post(url, scripted_error, **HX))
    assert "is-kept" not in page and drafts.SESSION_KEY in alice_client.session
    assert "tiktok:new" not in alice_client.session[drafts.SESSION_KEY]


def test_opening_the_form_again_or_cancel_forgets_what_was_kept(alice_client, tiktok, scripted):
    url = reverse("connection_create", args=["tiktok"])
    alice_client.post(url, tiktok_form("bad-token-0000"), **HX)
    assert "tiktok:new" in alice_client.session[drafts.SESSION_KEY]
    alice_client.get(reverse("platform_card", args=["tiktok"]), **HX)  # Cancel
    assert "tiktok:new" not in alice_client.session[drafts.SESSION_KEY]
    alice_client.post(url, tiktok_form("bad-token-0000"), **HX)
    page = html(alice_client.get(url, **HX))
    assert "is-kept" not in page and "tiktok:new" not in alice_client.session[drafts.SESSION_KEY]


def test_a_kept_secret_expires_and_belongs_to_its_user_only(user, other_user, monkeypatch):
    from django.contrib.sessions.backends.db import SessionStore

    request = RequestFactory().get("/")
    request.session, request.user = SessionStore(), user
    drafts.keep(request, scope="meta:new", secrets={"app_secret": "kept-value"})
    assert drafts.kept(request, scope="meta:new") == {"app_secret": "kept-value"}

    request.user = other_user  # the same session store under another user (never happens through login)
    assert drafts.kept(request, scope="meta:new") == {}

    request.user = user
    drafts.keep(request, scope="meta:new", secrets={"app_secret": "kept-value"})
    import time as real_time

    later = real_time.time() + drafts.KEEP_SECONDS + 5
    monkeypatch.setattr("cryptography.fernet.time.time", lambda: later)
    assert drafts.kept(request, scope="meta:new") == {}


def test_edit_with_a_wrong_new_token_keeps_the_new_app_secret_and_the_stored_secrets(alice_client, alice_tiktok,
                                                                                    scripted):
    url = reverse("connection_edit", args=[alice_tiktok.pk])
    page = html(alice_client.post(url, tiktok_form("bad-9999", app_secret="a-rotated-app-secret"), **HX))
    assert "TikTok refused this value" in field_block(page, "access_token")
    assert "is-kept" in field_block(page, "app_secret") and "a-rotated-app-secret" not in page
    assert reload(alice_tiktok).secrets == {"app_secret": APP_SECRET, "access_token": GOOD_TOKEN}
    alice_client.post(url, tiktok_form("good-new-token-0002", app_secret=""), **HX)
    assert reload(alice_tiktok).secrets == {"app_secret": "a-rotated-app-secret", "access_token": "good-new-token-0002"}


@pytest.mark.parametrize("code", ["meta", "google_ads", "linkedin", "tiktok", "ttd", "netflix"])
def test_no_secret_value_is_ever_rendered_back_after_a_refusal(alice_client, code, scripted):
    from credentials.forms import credentials_form_for

    form_class = credentials_form_for(code)
    data = {name: f"typed-{name}-value-0000" for name in form_class.base_fields}
    page = html(alice_client.post(reverse("connection_create", args=[code]), data, **HX))
    for name in form_class.secret_fields:
        assert f"typed-{name}-value-0000" not in page
        assert not re.search(rf'name="{name}"[^>]*value=', page)
