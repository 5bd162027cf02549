"""The Platforms page and the connection actions over HTTP (HTMX partials and plain requests)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from credentials import services
from credentials.models import Connection, ConnectionEvent
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN
from tests.credentials.conftest import APP_SECRET, GOOD_TOKEN, reload, tiktok_form

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
CODES = ["meta", "google_ads", "google_dm", "linkedin", "tiktok", "ttd", "netflix"]


def html(response) -> str:
    return response.content.decode()


def test_platforms_page_has_one_card_per_platform_all_not_connected(alice_client):
    response = alice_client.get(reverse("platform_list"))
    assert response.status_code == 200
    page = html(response)
    for code in CODES:
        assert f'id="platform-{code}"' in page
    assert page.count("Not connected") == len(CODES)  # seven since Google's Data Manager platform
    assert reverse("partner_contract", args=["netflix"]) in page
    assert "Partner integration" in page


def test_platforms_page_needs_a_signed_in_user(client):
    response = client.get(reverse("platform_list"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("code", CODES)
def test_connect_form_partial_has_fields_masked_secrets_toggles_and_help_steps(alice_client, code):
    response = alice_client.get(reverse("connection_create", args=[code]), **HX)
    assert response.status_code == 200
    page = html(response)
    assert "<html" not in page  # a partial, not the page
    assert f'id="platform-{code}"' in page and "hx-post" in page
    from credentials.forms import credentials_form_for

    form_class = credentials_form_for(code)
    for name in form_class.base_fields:
        assert f'name="{name}"' in page
    for name in form_class.secret_fields:
        assert re.search(rf'<input type="password" name="{name}"', page)
        assert f'data-toggle-secret="{code}-new-{name}"' in page
    assert "Where to find these" in page
    assert form_class.help_steps[0][:30] in page
    assert "Fill demo values" not in page  # DEMO_MODE is off in tests


def test_demo_mode_shows_the_demo_credentials_and_a_fill_button(alice_client, settings):
    settings.DEMO_MODE = True
    page = html(alice_client.get(reverse("connection_create", args=["meta"]), **HX))
    assert "Fill demo values" in page
    assert 'id="demo-values-meta"' in page
    assert DEMO_CREDENTIALS["meta"]["access_token"] in page


def test_unknown_platform_is_404(alice_client):
    assert alice_client.get(reverse("connection_create", args=["myspace"]), **HX).status_code == 404


def test_field_errors_render_inline_in_the_partial(alice_client, meta):
    data = {"label": "x", "app_id": "12ab", "app_secret": "s", "access_token": "t", "ad_account_id": "act_abc"}
    response = alice_client.post(reverse("connection_create", args=["meta"]), data, **HX)
    assert response.status_code == 200
    page = html(response)
    assert "An ad account id is act_ followed by digits" in page
    assert "must contain digits only" in page
    assert 'class="field has-error"' in page
    assert 'value="s"' not in page and 'value="t"' not in page  # secrets are never re-rendered
    assert not Connection.objects.exists()


def test_failed_validation_shows_the_platforms_reason_inline_and_stores_nothing(alice_client, tiktok, scripted):
    response = alice_client.post(reverse("connection_create", args=["tiktok"]), tiktok_form("bad-token-0000"), **HX)
    assert response.status_code == 200
    page = html(response)
    assert 'class="alert alert-error" role="alert"' in page
    assert "Access token is invalid or expired" in page
    assert "bad-token-0000" not in page and APP_SECRET not in page
    assert not Connection.objects.exists()


def test_transient_failure_is_an_inline_error_not_a_500(alice_client, tiktok, scripted):
    response = alice_client.post(reverse("connection_create", args=["tiktok"]), tiktok_form("down-1234"), **HX)
    assert response.status_code == 200
    assert "Could not reach TikTok" in html(response)


def test_successful_connect_swaps_in_the_updated_card(alice_client, user, tiktok, scripted):
    response = alice_client.post(reverse("connection_create", args=["tiktok"]), tiktok_form(), **HX)
    assert response.status_code == 200
    page = html(response)
    connection = Connection.objects.get(owner=user)
    assert 'class="badge badge-active"' in page
    assert "Access token <code>••••0001</code>" in page
    assert GOOD_TOKEN not in page and APP_SECRET not in page
    assert "<form" not in page.split('id="connection-')[0]  # the connect form is closed
    assert ConnectionEvent.objects.filter(connection=connection, kind="connected").exists()


def test_connect_without_htmx_redirects_back_to_the_platforms_page(alice_client, tiktok, scripted):
    response = alice_client.post(reverse("connection_create", args=["tiktok"]), tiktok_form())
    assert response.status_code == 302
    assert response["Location"] == reverse("platform_list") + "#platform-tiktok"


def test_failed_connect_without_htmx_renders_the_whole_page_with_the_error(alice_client, tiktok, scripted):
    response = alice_client.post(reverse("connection_create", args=["tiktok"]), tiktok_form("bad-1"))
    assert response.status_code == 200
    page = html(response)
    assert "<html" in page and "Access token is invalid or expired" in page


def test_duplicate_label_is_an_inline_error_on_the_label(alice_client, alice_tiktok, scripted):
    response = alice_client.post(reverse("connection_create", args=["tiktok"]), tiktok_form(), **HX)
    assert response.status_code == 200
    assert "already have a TikTok connection called" in html(response)
    assert Connection.objects.count() == 1


def test_connect_meta_end_to_end_through_the_fake(alice_client, user, meta, meta_graph):
    data = dict(DEMO_CREDENTIALS["meta"], access_token=EXPIRED_TOKEN, ad_account_id="1234567890")
    page = html(alice_client.post(reverse("connection_create", args=["meta"]), data, **HX))
    assert "Meta:" in page and not Connection.objects.exists()
    data["access_token"] = DEMO_CREDENTIALS["meta"]["access_token"]
    page = html(alice_client.post(reverse("connection_create", args=["meta"]), data, **HX))
    connection = Connection.objects.get(owner=user)
    assert connection.config["ad_account_id"] == "act_1234567890"  # bare digits got the prefix
    assert "badge-active" in page and data["access_token"] not in page


def test_edit_form_shows_identifiers_but_no_secret_and_blank_keeps_them(alice_client, alice_tiktok, scripted):
    url = reverse("connection_edit", args=[alice_tiktok.pk])
    page = html(alice_client.get(url, **HX))
    assert 'value="7100000000000000001"' in page
    assert GOOD_TOKEN not in page and APP_SECRET not in page
    assert "Leave blank to keep the stored value." in page
    data = tiktok_form("", app_secret="", label="Renamed")
    response = alice_client.post(url, data, **HX)
    assert response.status_code == 200 and "badge-active" in html(response)
    connection = reload(alice_tiktok)
    assert connection.label == "Renamed" and connection.secrets["access_token"] == GOOD_TOKEN


def test_edit_with_a_failing_token_shows_the_reason(alice_client, alice_tiktok, scripted):
    url = reverse("connection_edit", args=[alice_tiktok.pk])
    page = html(alice_client.post(url, tiktok_form("bad-9999"), **HX))
    assert "Access token is invalid or expired" in page
    assert reload(alice_tiktok).secrets["access_token"] == GOOD_TOKEN


def test_test_now_disconnect_reconnect_and_delete_through_the_card(alice_client, user, alice_tiktok, scripted):
    pk = alice_tiktok.pk
    page = html(alice_client.post(reverse("connection_test", args=[pk]), **HX))
    assert "Working: reached" in page and "alert-ok" in page

    page = html(alice_client.post(reverse("connection_disconnect", args=[pk]), **HX))
    assert "badge-disconnected" in page and "Reconnect" in page
    assert reload(alice_tiktok).secrets == {}

    edit = html(alice_client.get(reverse("connection_edit", args=[pk]), **HX))
    assert "Leave blank to keep" not in edit  # nothing is stored any more
    page = html(alice_client.post(reverse("connection_edit", args=[pk]), tiktok_form("", app_secret=""), **HX))
    assert "Enter this value: none is stored." in page or "This field is required." in page
    page = html(alice_client.post(reverse("connection_edit", args=[pk]), tiktok_form(), **HX))
    assert "badge-active" in page

    page = html(alice_client.post(reverse("connection_delete", args=[pk]), **HX))
    assert not Connection.objects.filter(pk=pk).exists()
    assert "Not connected" in page


def test_connection_page_shows_events(alice_client, alice_tiktok, scripted):
    services.test_connection(connection=alice_tiktok)
    page = html(alice_client.get(reverse("connection_detail", args=[alice_tiktok.pk])))
    assert "Connected" in page and "Tested OK" in page
    assert "••••0001" in page and GOOD_TOKEN not in page


def test_action_urls_refuse_get(alice_client, alice_tiktok):
    for name in ("connection_test", "connection_disconnect", "connection_delete"):
        assert alice_client.get(reverse(name, args=[alice_tiktok.pk])).status_code == 405


METHODS = {"connection_detail": {"get"}, "connection_edit": {"get", "post"}, "connection_test": {"post"},
           "connection_disconnect": {"post"}, "connection_delete": {"post"}}
CONNECTION_URLS = list(METHODS)


@pytest.mark.parametrize("name", CONNECTION_URLS)
@pytest.mark.parametrize("method", ["get", "post"])
def test_another_users_connection_is_a_404_on_every_url(client_for, other_user, alice_tiktok, name, method):
    client = client_for(other_user)
    for headers in ({}, HX):
        response = getattr(client, method)(reverse(name, args=[alice_tiktok.pk]), tiktok_form(), **headers)
        allowed = METHODS[name]
        expected = 404 if method in allowed else 405  # 405: nobody may use that method there
        assert response.status_code == expected, (name, method, response.status_code)
    connection = reload(alice_tiktok)
    assert connection.status == Connection.Status.ACTIVE and connection.label == "Main advertiser"
    assert connection.secrets["access_token"] == GOOD_TOKEN


@pytest.mark.parametrize("name", CONNECTION_URLS)
def test_post_without_csrf_token_is_refused(user, alice_tiktok, name):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(reverse(name, args=[alice_tiktok.pk]), tiktok_form(), **HX)
    assert response.status_code in (403, 405)
    assert reload(alice_tiktok).status == Connection.Status.ACTIVE


def test_connect_post_without_csrf_token_is_refused(user, tiktok, scripted):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(reverse("connection_create", args=["tiktok"]), tiktok_form(), **HX)
    assert response.status_code == 403 and not Connection.objects.exists()


@pytest.mark.parametrize("junk", ["", "\x00", "a" * 5000, "<script>x</script>", "😀" * 60, "act_", "{{ 7*7 }}"])
@pytest.mark.parametrize("code", CODES)
def test_junk_input_never_answers_500(alice_client, code, junk, scripted):
    from credentials.forms import credentials_form_for

    data = {name: junk for name in credentials_form_for(code).base_fields}
    response = alice_client.post(reverse("connection_create", args=[code]), data, **HX)
    assert response.status_code == 200
    assert "<script>x</script>" not in html(response)


def test_partner_contract_page_renders_the_document(alice_client, tmp_path, monkeypatch):
    from platforms.adapters.netflix import NetflixAdapter

    doc = tmp_path / "netflix.md"
    doc.write_text("# Netflix audience contract\n\nRequests are **signed**.\n\n- `POST /audiences`\n\n"
                   "```\nX-Signature: hmac\n```\n<b>raw html is escaped</b>\n", encoding="utf-8")
    monkeypatch.setattr(NetflixAdapter, "partner_contract", str(doc))
    page = html(alice_client.get(reverse("partner_contract", args=["netflix"])))
    assert "<h2>Netflix audience contract</h2>" in page
    assert "<strong>signed</strong>" in page and "<li><code>POST /audiences</code></li>" in page
    assert "<pre><code>X-Signature: hmac" in page
    assert "&lt;b&gt;raw html is escaped&lt;/b&gt;" in page


def test_partner_contract_page_without_the_document(alice_client, tmp_path, monkeypatch):
    from platforms.adapters.netflix import NetflixAdapter

    monkeypatch.setattr(NetflixAdapter, "partner_contract", str(tmp_path / "missing.md"))
    response = alice_client.get(reverse("partner_contract", args=["netflix"]))
    assert response.status_code == 200 and "not available" in html(response)


def test_actions_without_htmx_redirect_and_show_the_result_as_a_message(alice_client, alice_tiktok, scripted):
    response = alice_client.post(reverse("connection_test", args=[alice_tiktok.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("platform_list") + "#platform-tiktok"
    assert "Working: reached" in html(response)
