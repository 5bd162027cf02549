"""The Google Ads API adapter after Google's Customer Match change (4 March 2026): accounts that are not allowlisted
get a clear pointer to the Data Manager connection; developer tokens are optional; consent has no default."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest

from platforms.adapters.google_ads import GoogleAdsAdapter, GoogleAdsCredentialsForm
from platforms.errors import AuthError
from sandbox.base import FakeServer
from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.google_ads import FakeGoogleAdsServer
from sandbox.google_oauth import FakeGoogleOAuth

CREDS = {k: v for k, v in DEMO_CREDENTIALS["google_ads"].items() if k != "label"}
CUSTOMER = "1234567890"


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture(scope="module")
def servers():
    oauth = FakeGoogleOAuth()
    http = FakeServer([oauth]).start()
    ads = FakeGoogleAdsServer().start()
    yield SimpleNamespace(http=http, ads=ads)
    ads.stop()
    http.stop()


@pytest.fixture
def google(servers, settings):
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "google_ads": servers.ads.address}
    settings.GRPC_PLAINTEXT_LOOPBACK = True
    settings.GOOGLE_OAUTH_TOKEN_URL = f"{servers.http.url}/google-oauth/token"
    servers.ads.reset_calls()
    servers.ads.customers[CUSTOMER]["allowlisted"] = True
    yield servers.ads
    servers.ads.customers[CUSTOMER]["allowlisted"] = True


def adapter(**overrides) -> GoogleAdsAdapter:
    return GoogleAdsAdapter({**CREDS, "customer_id": CUSTOMER, **overrides})


def test_labelled_as_the_path_for_allowlisted_accounts():
    assert GoogleAdsAdapter.name == "Google Ads API (allowlisted accounts)"
    assert "Data Manager" in " ".join(GoogleAdsCredentialsForm.help_steps)


def test_a_customer_not_allowlisted_gets_a_pointer_to_the_data_manager_at_the_first_upload(google):
    google.customers[CUSTOMER]["allowlisted"] = False
    ads = adapter()
    ads.validate_credentials()  # a read-only query: Google reports the allowlist only on uploads
    list_name = ads.create_audience("Not allowlisted", "")
    with pytest.raises(AuthError) as caught:
        ads.add_members(list_name, [{"email": sha("a@example.com")}])
    assert caught.value.code == "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE"
    assert "Google (Data Manager API)" in caught.value.message and CUSTOMER in caught.value.message
    ads.close()


def test_the_developer_token_is_optional(google):
    form = GoogleAdsCredentialsForm(data=dict(DEMO_CREDENTIALS["google_ads"], developer_token=""))
    assert form.is_valid(), form.errors
    _, _, secrets = form.split()
    assert "developer_token" not in secrets
    ads = adapter(developer_token="")
    ads.validate_credentials()
    assert "developer-token" not in google.calls[-1].metadata
    ads.close()


def test_consent_has_no_granted_default_and_must_be_chosen():
    form = GoogleAdsCredentialsForm()
    for name in ("consent_ad_user_data", "consent_ad_personalization"):
        assert not form.fields[name].initial and form.fields[name].choices[0][0] == ""
    missing = GoogleAdsCredentialsForm(data=dict(DEMO_CREDENTIALS["google_ads"], consent_ad_user_data=""))
    assert not missing.is_valid() and "consent_ad_user_data" in missing.errors
    # Existing connections that said "not specified" keep validating.
    assert GoogleAdsCredentialsForm(data=dict(DEMO_CREDENTIALS["google_ads"],
                                              consent_ad_user_data="UNSPECIFIED")).is_valid()
