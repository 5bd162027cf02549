"""Sign-in with the platform, end to end against the sandbox (a real loopback server): the consent screen, the
callback (state, PKCE, refusals, scopes), the account choice and the stored connection."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client
from django.urls import reverse

from credentials.models import Connection, ConnectionEvent
from sandbox.running import running_fake_platforms

pytestmark = pytest.mark.django_db


# The sandbox's apps have loopback redirect URIs registered (as a developer's app would): the site is 127.0.0.1.
HOST = {"HTTP_HOST": "127.0.0.1:8000"}


@pytest.fixture
def fakes(settings, client):
    client.defaults.update(HOST)
    with running_fake_platforms() as running:
        for name, value in running.settings_overrides().items():
            setattr(settings, name, value)
        yield running


def consent(client, code, *, decision="allow", untick=(), start_query="", separator=" "):
    """What a person's browser does: "Continue with ...", the platform's screen, Allow (or Cancel), back to us."""
    start = client.get(reverse("oauth_start", args=[code]) + start_query)
    assert start.status_code == 302, start.content
    url = start["Location"]
    screen = requests.get(url, timeout=10)
    assert screen.status_code == 200 and "Allow" in screen.text
    asked = [s for s in parse_qs(urlsplit(url).query).get("scope", [""])[0].split(separator) if s]
    answer = requests.get(url, params={"decision": decision, "granted": [s for s in asked if s not in untick]},
                          allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    back = urlsplit(answer.headers["Location"])
    return client.get(f"{back.path}?{back.query}"), url


def test_meta_sign_in_lists_the_ad_accounts_and_connects_the_chosen_one(alice_client, user, fakes):
    response, url = consent(alice_client, "meta", separator=",")
    assert urlsplit(url).path == "/meta/v26.0/dialog/oauth"
    assert "code_challenge" not in url  # Meta: no PKCE
    assert response.status_code == 302 and response["Location"] == reverse("oauth_accounts", args=["meta"])
    page = alice_client.get(response["Location"])
    assert page.status_code == 200 and "Demo ad account" in page.content.decode()
    done = alice_client.post(reverse("oauth_accounts", args=["meta"]),
                             {"label": "EU brand", "account": "act_1234567890"})
    connection = Connection.objects.get(owner=user, label="EU brand")
    assert done.status_code == 302 and done["Location"] == reverse("connection_detail", args=[connection.pk])
    assert connection.auth_method == "oauth" and connection.status == "active"
    assert connection.config == {"app_id": "100200300", "ad_account_id": "act_1234567890"}
    token = connection.secrets["access_token"]
    meta = fakes.http["meta"]
    assert meta.tokens[token]["type"] == "USER" and meta.exchanges == 1  # the long-lived one, not the short
    assert 59 <= connection.expires_in_days <= 60 and connection.expiry_what == "access token"
    assert connection.expiry_renewable
    event = ConnectionEvent.objects.get(connection=connection)
    assert "signed in with the platform" in event.message and "expires in" in event.message
    detail = alice_client.get(done["Location"]).content.decode()
    assert token not in detail and "expires in" in detail and "Signed in with the platform" in detail


def test_a_refused_consent_is_a_clear_message_and_connects_nothing(alice_client, user, fakes):
    response, _ = consent(alice_client, "meta", decision="deny", separator=",")
    assert response.status_code == 302
    page = alice_client.get(response["Location"]).content.decode()
    assert "cancelled or the permissions were refused" in page
    assert not Connection.objects.exists()


def test_a_token_without_the_needed_scope_is_refused_with_its_name(alice_client, fakes):
    response, _ = consent(alice_client, "meta", untick=("ads_management",), separator=",")
    page = alice_client.get(response["Location"]).content.decode()
    assert "without ads_management" in page and not Connection.objects.exists()


def test_a_mismatched_or_replayed_state_is_refused(alice_client, user, other_user, fakes):
    start = alice_client.get(reverse("oauth_start", args=["meta"]))
    url = start["Location"]
    answer = requests.get(url, params={"decision": "allow", "granted": ["ads_management"]}, allow_redirects=False,
                          timeout=10)
    back = urlsplit(answer.headers["Location"])
    callback = f"{back.path}?{back.query}"
    # Another signed-in person cannot finish alice's sign-in (the state lives in alice's session).
    bob = Client(**HOST)
    bob.force_login(other_user)
    page = bob.get(bob.get(callback)["Location"]).content.decode()
    assert "expired or was not started here" in page
    # A forged state in alice's own session is refused too.
    forged = callback.replace(parse_qs(back.query)["state"][0], "forged-state")
    assert "expired or was not started here" in alice_client.get(alice_client.get(forged)["Location"]).content.decode()
    # The genuine one works once, and never twice.
    assert alice_client.get(callback)["Location"] == reverse("oauth_accounts", args=["meta"])
    replay = alice_client.get(callback)
    assert "expired or was not started here" in alice_client.get(replay["Location"]).content.decode()


def test_an_expired_sign_in_is_refused(alice_client, fakes, settings, monkeypatch):
    start = alice_client.get(reverse("oauth_start", args=["meta"]))
    answer = requests.get(start["Location"], params={"decision": "allow", "granted": ["ads_management"]},
                          allow_redirects=False, timeout=10)
    back = urlsplit(answer.headers["Location"])
    import cryptography.fernet as fernet

    later = fernet.time.time() + settings.OAUTH_FLOW_SECONDS + 5
    monkeypatch.setattr(fernet.time, "time", lambda: later)
    page = alice_client.get(alice_client.get(f"{back.path}?{back.query}")["Location"]).content.decode()
    assert "expired or was not started here" in page


def test_google_sign_in_uses_pkce_lists_customers_and_asks_for_the_consent_choices(alice_client, user, fakes):
    response, url = consent(alice_client, "google_dm")
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["access_type"] == ["offline"]
    oauth_fake = fakes.http["google_oauth"]
    token_request = [r for r in oauth_fake.requests if r.path == "/token"][-1].form()
    verifier = token_request["code_verifier"]
    assert base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode() == \
        query["code_challenge"][0]
    page = alice_client.get(response["Location"]).content.decode()
    assert "Google Ads 123-456-7890" in page and "Consent: ad user data" in page
    url = reverse("oauth_accounts", args=["google_dm"])
    missing = alice_client.post(url, {"label": "Google main", "account": "1234567890"})
    assert missing.status_code == 200 and not Connection.objects.exists()  # consent must be stated, terms ticked
    done = alice_client.post(url, {"label": "Google main", "account": "1234567890", "consent_ad_user_data": "GRANTED",
                                   "consent_ad_personalization": "DENIED", "customer_match_terms": "on"})
    connection = Connection.objects.get(owner=user)
    assert done.status_code == 302 and connection.auth_method == "oauth"
    assert connection.config["customer_id"] == "1234567890" and connection.config["auth_method"] == "oauth"
    assert connection.secrets["refresh_token"].startswith("1//sandbox-oauth-")  # tested through the gRPC fake
    assert connection.expires_at is None  # Google reports no end for a refresh token


def test_google_without_the_listing_scope_lets_the_person_type_the_customer_id(alice_client, user, fakes):
    response, _ = consent(alice_client, "google_dm", untick=("https://www.googleapis.com/auth/adwords",))
    page = alice_client.get(response["Location"]).content.decode()
    assert "type the account" in page
    alice_client.post(reverse("oauth_accounts", args=["google_dm"]), {
        "label": "Typed", "account": "123-456-7890", "consent_ad_user_data": "GRANTED",
        "consent_ad_personalization": "GRANTED", "customer_match_terms": "on"})
    assert Connection.objects.get(owner=user).config["customer_id"] == "1234567890"


def test_google_without_the_datamanager_scope_is_refused(alice_client, fakes):
    response, _ = consent(alice_client, "google_dm", untick=("https://www.googleapis.com/auth/datamanager",))
    assert "without https://www.googleapis.com/auth/datamanager" in alice_client.get(
        response["Location"]).content.decode()


def test_linkedin_sign_in_stores_the_refresh_token_and_its_year(alice_client, user, fakes):
    response, url = consent(alice_client, "linkedin")
    assert "code_challenge" not in url  # PKCE is for LinkedIn's native apps only
    page = alice_client.get(reverse("oauth_accounts", args=["linkedin"])).content.decode()
    assert 'name="source_platform"' in page  # LinkedIn's partner fields are asked on the account step
    alice_client.post(reverse("oauth_accounts", args=["linkedin"]), {
        "label": "LI", "account": "508123456", "source_platform": "ACTIVATION_MANAGER", "mobile_ids": "android"})
    connection = Connection.objects.get(owner=user)
    assert connection.config["source_platform"] == "ACTIVATION_MANAGER"
    assert set(connection.secrets) == {"client_secret", "access_token", "refresh_token"}
    assert connection.expiry_what == "refresh token" and 364 <= connection.expires_in_days <= 365


def test_tiktok_sign_in_reads_auth_code_and_lists_advertisers(alice_client, user, fakes):
    response, url = consent(alice_client, "tiktok")
    assert "app_id=" in url and "client_id" not in url
    page = alice_client.get(response["Location"]).content.decode()
    assert "7100000000000000001" in page and "Not yours" not in page
    alice_client.post(reverse("oauth_accounts", args=["tiktok"]), {"label": "TT", "account": "7100000000000000001"})
    connection = Connection.objects.get(owner=user)
    assert connection.secrets["access_token"] in fakes.http["tiktok"].issued and connection.expires_at is None


def test_sign_in_again_renews_an_existing_connection(alice_client, user, fakes):
    consent(alice_client, "meta", separator=",")
    alice_client.post(reverse("oauth_accounts", args=["meta"]), {"label": "EU", "account": "act_1234567890"})
    connection = Connection.objects.get(owner=user)
    old = connection.secrets["access_token"]
    consent(alice_client, "meta", separator=",", start_query=f"?connection={connection.pk}")
    page = alice_client.get(reverse("oauth_accounts", args=["meta"])).content.decode()
    assert "Sign in again for" in page
    alice_client.post(reverse("oauth_accounts", args=["meta"]), {"label": "EU", "account": "act_1234567890"})
    connection.refresh_from_db()
    assert Connection.objects.count() == 1 and connection.secrets["access_token"] != old


def test_signing_in_again_for_someone_elses_connection_is_a_404(alice_client, other_user, fakes):
    from platforms.models import Platform

    bobs = Connection.objects.create(owner=other_user, platform=Platform.objects.get(code="meta"), label="Bob's",
                                     config={}, secrets={"access_token": "bob-token-123456"})
    assert alice_client.get(reverse("oauth_start", args=["meta"]) + f"?connection={bobs.pk}").status_code == 404
    assert alice_client.get(reverse("oauth_start", args=["meta"]) + "?connection=x").status_code == 404
    assert alice_client.get(reverse("oauth_start", args=["linkedin"]) + f"?connection={bobs.pk}").status_code == 404


def test_without_a_configured_app_there_is_no_sign_in(alice_client, settings):
    settings.OAUTH_USE_SANDBOX = False
    page = alice_client.get(reverse("platform_list")).content.decode()
    assert "Continue with" not in page
    response = alice_client.get(reverse("oauth_start", args=["meta"]))
    assert response.status_code == 302
    assert "not set up on this server" in alice_client.get(response["Location"]).content.decode()


def test_the_platforms_page_offers_continue_with_where_an_app_is_configured(alice_client, fakes):
    page = alice_client.get(reverse("platform_list")).content.decode()
    for name in ("Meta", "LinkedIn", "TikTok"):
        assert f"Continue with {name}" in page
    assert "Continue with The Trade Desk" not in page


def test_the_sandbox_refuses_a_wrong_pkce_verifier_and_a_reused_code():
    from sandbox.base import FakeRequest
    from sandbox.oauth import ConsentScreen

    screen = ConsentScreen("Google", clients=lambda: {"c": "s"})
    challenge = base64.urlsafe_b64encode(hashlib.sha256(b"right-verifier").digest()).rstrip(b"=").decode()
    query = {"client_id": ["c"], "redirect_uri": ["http://127.0.0.1:9/cb"], "state": ["x"], "decision": ["allow"],
             "code_challenge": [challenge], "code_challenge_method": ["S256"], "response_type": ["code"]}
    answer = screen.authorize(FakeRequest("GET", "/auth", query, {}, b""))
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    assert screen.redeem(code, client_id="c", client_secret="s", redirect_uri="http://127.0.0.1:9/cb",
                         code_verifier="wrong") == "invalid_grant"
    assert screen.redeem(code, client_id="c", client_secret="s", redirect_uri="http://127.0.0.1:9/cb",
                         code_verifier="right-verifier") == "invalid_grant"  # used once already
    evil = screen.authorize(FakeRequest("GET", "/auth", {**query, "redirect_uri": ["https://evil.example/cb"]}, {},
                                        b""))
    assert evil.status == 400
