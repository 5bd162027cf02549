"""Sign-in with Google, shared by the two Google adapters (the Data Manager API and the Google Ads API).

Google's pages relied on:
- https://developers.google.com/identity/protocols/oauth2/web-server : the consent screen
  ``https://accounts.google.com/o/oauth2/v2/auth`` with ``access_type=offline`` (a refresh token) and
  ``prompt=consent`` (Google issues the refresh token only at a consent); PKCE with ``code_challenge_method=S256``;
  the code exchanged at ``https://oauth2.googleapis.com/token``; a refusal comes back as ``error=access_denied``.
  Granular consent lets a person untick a scope, so the granted ``scope`` of the answer is checked.
- Refresh tokens report no lifetime: they work until revoked, unused for six months, or — for an app whose consent
  screen is still "Testing" — for 7 days (Google's "Refresh token expiration" notes); a refused refresh is
  ``invalid_grant``, which the adapters already turn into an AuthError at every call (each call refreshes the access
  token), so the daily revalidation finds a revoked or lapsed grant.
- https://developers.google.com/google-ads/api/docs/account-management/listing-accounts :
  ``CustomerService.ListAccessibleCustomers`` "returns a list of all accounts that you are able to act upon
  directly given your current credentials" (REST: ``GET https://googleads.googleapis.com/v26/customers:
  listAccessibleCustomers``, answering ``{"resourceNames": ["customers/1234567890"]}``; it needs the ``adwords``
  scope). The Data Manager API lists no accounts, so its sign-in asks for ``adwords`` too, but only to offer the
  list: without it the person types the customer id.
"""

from __future__ import annotations

import os
import re

from django.conf import settings

from platforms.adapters import oauth as oauth_flow
from platforms.adapters.base import OAuthAccount, OAuthApp, OAuthGrant, oauth_sandbox
from platforms.adapters.http import build_session, raise_for_status, send
from platforms.errors import AuthError

AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
ADS_REST_URL = "https://googleads.googleapis.com"
ADS_API_VERSION = "v26"
ADWORDS_SCOPE = "https://www.googleapis.com/auth/adwords"
DATAMANAGER_SCOPE = "https://www.googleapis.com/auth/datamanager"
CUSTOMER = re.compile(r"^customers/(\d{10})$")


def oauth_app(*scopes: str, required: tuple[str, ...]) -> OAuthApp:
    return OAuthApp(
        authorize_url=AUTHORIZE_URL, sandbox_authorize_path="/google-oauth/auth", scopes=scopes,
        required_scopes=required, pkce=True, extra_params={"access_type": "offline", "prompt": "consent"},
        client_id_setting="GOOGLE_OAUTH_CLIENT_ID", client_secret_setting="GOOGLE_OAUTH_CLIENT_SECRET",
    )


def ads_rest_url() -> str:
    """The Google Ads API's REST root (``GOOGLE_ADS_REST_URL``; the sandbox's in demo mode and tests)."""
    if os.environ.get("GOOGLE_ADS_REST_URL"):
        return os.environ["GOOGLE_ADS_REST_URL"].rstrip("/")
    if oauth_sandbox():
        return settings.FAKE_PLATFORMS_URL.rstrip("/") + "/google-oauth/googleads"
    return ADS_REST_URL


def exchange(*, platform: str, app: OAuthApp, code: str, redirect_uri: str, code_verifier: str | None,
             client: tuple[str, str]) -> OAuthGrant:
    """The code (and PKCE verifier) for a refresh token at Google's token endpoint."""
    token = oauth_flow.fetch_token(platform=platform, token_url=settings.GOOGLE_OAUTH_TOKEN_URL, client=client,
                                   app=app, redirect_uri=redirect_uri, code=code, code_verifier=code_verifier)
    refresh_token = str(token.get("refresh_token") or "")
    if not refresh_token:
        raise AuthError(f"{platform}: Google gave no refresh token. Remove this app's access at "
                        "https://myaccount.google.com/permissions and sign in again.")
    # The access token lasts an hour and is refreshed at every call: only the refresh token is stored.
    return OAuthGrant(secrets={"refresh_token": refresh_token}, scopes=oauth_flow.scopes_of(token),
                      details={"access_token": str(token.get("access_token") or "")})


def accessible_customers(*, platform: str, grant: OAuthGrant) -> list[OAuthAccount]:
    """The Google Ads customers the signed-in person reaches directly ([] without the adwords scope)."""
    access_token = grant.details.get("access_token")
    if ADWORDS_SCOPE not in grant.scopes or not access_token:
        return []
    url = f"{ads_rest_url()}/{ADS_API_VERSION}/customers:listAccessibleCustomers"
    with build_session({"Authorization": f"Bearer {access_token}", "Accept": "application/json"}) as session:
        response = send(session, "GET", url, platform=platform)
    raise_for_status(response, platform=platform)
    try:
        names = response.json().get("resourceNames") or []
    except (ValueError, AttributeError):
        names = []
    accounts = []
    for name in names:
        match = CUSTOMER.match(str(name))
        if match:
            cid = match.group(1)
            accounts.append(OAuthAccount(id=cid, name=f"Google Ads {cid[:3]}-{cid[3:6]}-{cid[6:]}"))
    return accounts


class GoogleSignIn:
    """"Continue with Google" for an adapter class (both Google adapters share Google's OAuth and its list of the
    Google Ads customers the person can reach); the class sets ``name`` and ``oauth``."""

    @classmethod
    def oauth_exchange(cls, *, code: str, redirect_uri: str, code_verifier: str | None,
                       client: tuple[str, str]) -> OAuthGrant:
        return exchange(platform=cls.name, app=cls.oauth, code=code, redirect_uri=redirect_uri,
                        code_verifier=code_verifier, client=client)

    @classmethod
    def oauth_accounts(cls, *, grant: OAuthGrant, client: tuple[str, str]) -> list[OAuthAccount]:
        return accessible_customers(platform=cls.name, grant=grant)
