"""LinkedIn Matched Audiences: DMP segments with streamed users (Marketing API, versioned REST).

The flow, as LinkedIn's Marketing API documents it ("DMP Segments", "DMP Segment Users", "Matched Audiences
FAQ" on learn.microsoft.com/linkedin/marketing/matched-audiences):

1. ``GET /rest/adAccounts/{id}``: the ad account the token may use (validation).
2. ``POST /rest/dmpSegments`` ``{name, description, account: urn:li:sponsoredAccount:{id}, type: USER,
   sourcePlatform, destinations: [{destination: LINKEDIN}], accessPolicy: PRIVATE}`` -> 201, the new id in
   ``x-restli-id``. "description string (optional) A description for this DMP segment."
   (https://learn.microsoft.com/en-us/linkedin/marketing/matched-audiences/create-and-manage-segments, 2026-08).
3. ``POST /rest/dmpSegments/{id}/users`` with ``X-RestLi-Method: BATCH_CREATE`` and ``{elements: [{action: ADD |
   REMOVE, userIds: [{idType: SHA256_EMAIL | GOOGLE_AID, idValue}]}]}``; the answer lists one status per element.
4. ``GET /rest/dmpSegments/{id}``: ``inputCount`` and, per destination, ``matchedCount``, ``audienceSize`` and
   ``status`` (BUILDING, UPDATING, READY, FAILED, ARCHIVED, EXPIRED, ERROR).
5. ``DELETE /rest/dmpSegments/{id}``.

Every call carries ``Authorization: Bearer``, ``LinkedIn-Version: YYYYMM`` and ``X-Restli-Protocol-Version: 2.0.0``.

Choices and limits:
- ``LINKEDIN_VERSION`` is a monthly version LinkedIn still serves: "These API versions are supported and stable
  for a minimum of one year before sunset" (https://learn.microsoft.com/en-us/linkedin/marketing/versioning); the
  migrations page dates each sunset ("202603 (March 2026) ... March 16, 2027"). Bump it in one place.
- Identifiers: SHA-256 hex of the normalized email (``platforms.matchkeys``) as SHA256_EMAIL ("SHA256_EMAIL A
  HEX encoded string with length = 64", create-and-manage-segment-users). Mobile advertiser ids: LinkedIn takes
  Android advertising ids as GOOGLE_AID and no longer takes iOS IDFAs -- Adobe's LinkedIn destination: "Starting
  with September 2025, you can no longer map IDFA as a target identity, since IDFA is no longer supported by the
  LinkedIn Matched Audiences destination", citing LinkedIn's idTypes list (li-lms-2025-07); Tealium's connector
  names "the Android Ad ID (GAIDs)" only. An IDFA sent as GOOGLE_AID cannot match, and an IDFA and a GAID look
  alike (both UUIDs), so the adapter cannot tell them apart: the connection says what its audiences' mobile ids
  are (``mobile_ids``: "android" sends them as GOOGLE_AID; anything else, including no answer, sends none and says
  so in the batch's messages). A per-column import choice ("mobile advertiser id (Android GAID)" / "(iOS IDFA)")
  would need a stored key of its own: not done here. LinkedIn also takes plain-text firstName / lastName / title /
  company / country, but we keep names only hashed (raw PII is never stored), so those fields are not sent; people
  with no key LinkedIn takes are counted invalid and left out of the request.
- Batch size 5,000 users per BATCH_CREATE request (the limit commonly given for the users endpoint; UNCONFIRMED
  against the current page, kept in ``BATCH_SIZE``).
- LinkedIn limits the DMP streaming endpoints per member per minute (since 2022-10-31) on top of daily app
  limits, and publishes no number: we budget 30 calls a minute per ad account and honour 429 Retry-After.
- A segment must reach 300 matched members before campaigns can use it (``min_audience_size``).
- LinkedIn asks to wait about 5 seconds after creating a segment before adding users; a too-early batch is
  answered 404, which we report as transient so the engine simply retries it.
- ``sourcePlatform`` is an enum value LinkedIn assigns to each approved Audiences partner (the value list is not
  public; third-party schemas show only LIST_UPLOAD / STREAMING). It is a field of the connection
  (``source_platform``, required on the form); a connection without one gets a clear error before any segment is
  created, and LinkedIn's refusal of a value names it and says where to find the right one.
- Tokens expire after 60 days: 401 is an AuthError that says so.

Token lifetime and sign-in with LinkedIn (``token_expiry``, ``renew_credentials``, ``oauth_*``):
- https://learn.microsoft.com/en-us/linkedin/shared/authentication/token-introspection : "The token inspector tool
  enables developers to check the Time to Live (TTL) and status (active/expired) for all tokens"; ``POST
  https://www.linkedin.com/oauth/v2/introspectToken`` with ``client_id``, ``client_secret``, ``token`` answers
  ``{active, status, expires_at, scope, ...}``. We introspect the refresh token when there is one (it is what
  lapses), else the access token.
- https://learn.microsoft.com/en-us/linkedin/shared/authentication/programmatic-refresh-tokens : "By default, access
  tokens are valid for 60 days and programmatic refresh tokens are valid for a year. The member must reauthorize
  your application when refresh tokens expire." and "the lifespan or Time To Live (TTL) of the refresh token remains
  the same as specified in the initial OAuth flow (365 days), and the new access token has a new TTL of 60 days".
  Revalidation refreshes the access token once fewer than ``RENEW_BEFORE_DAYS`` remain.
- https://learn.microsoft.com/en-us/linkedin/shared/authentication/authorization-code-flow : consent at
  ``https://www.linkedin.com/oauth/v2/authorization``, the code exchanged at ``.../oauth/v2/accessToken``. PKCE:
  LinkedIn offers it only "For native apps" on loopback redirects, enabled per app by LinkedIn
  (authorization-code-flow-native), so this web sign-in does not use it. Ad accounts of the signed-in member:
  ``GET /rest/adAccountUsers?q=authenticatedUser`` (names from ``GET /rest/adAccounts/{id}``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence

import requests
from django import forms
from django.conf import settings
from django.utils import timezone

from platforms.adapters import oauth as oauth_flow
from platforms.adapters.base import (
    ApiVersion,
    AudienceStatus,
    BatchResult,
    Capabilities,
    CredentialsForm,
    OAuthAccount,
    OAuthApp,
    OAuthGrant,
    Operation,
    PreparedMember,
    RateLimit,
    SecretInput,
    TokenExpiry,
    TokenRenewal,
    UploadSession,
    ValidationResult,
    oauth_sandbox,
)
from platforms.adapters.http import HttpAdapter, as_int, build_session, error_message, path_of, send
from platforms.errors import AuthError, PermanentError, TransientError
from platforms.forms import digits_id
from platforms.matchkeys import HEX, RAW

LINKEDIN_VERSION = "202606"
RESTLI_PROTOCOL = "2.0.0"
BATCH_SIZE = 5_000
MIN_MATCHED = 300
MAX_SEGMENT_NAME = 100
SOURCE_PLATFORM_RE = re.compile(r"^[A-Z][A-Z0-9_]{1,99}$")
# Our match key -> LinkedIn's idType, in the order they are sent.
ID_TYPES: tuple[tuple[str, str], ...] = (("email", "SHA256_EMAIL"), ("maid", "GOOGLE_AID"))
# What the connection says its audiences' mobile advertiser ids are (LinkedIn matches Android ids only).
MOBILE_IDS_ANDROID = "android"
MOBILE_ID_CHOICES = [
    ("none", "Don't send mobile advertiser ids (iOS IDFAs, or a mix)"),
    (MOBILE_IDS_ANDROID, "They are Android advertising ids (GAID): send them"),
]
AUTH_HINT = ("Check the access token (LinkedIn tokens expire after 60 days) and that its member may manage "
             "this ad account's audiences (rw_dmp_segments).")
OAUTH_URL = "https://www.linkedin.com/oauth/v2"
OAUTH_SCOPES = ("rw_ads", "rw_dmp_segments")
# Access tokens are refreshed (when a refresh token is stored) once fewer days than this remain.
RENEW_BEFORE_DAYS = 30
MAX_AD_ACCOUNTS = 100
# Segment states LinkedIn reports, and ours (the UI reads the lowercased word).
READY_STATES = {"READY"}
BUILDING_STATES = {"BUILDING", "UPDATING", "PROCESSING"}


def account_urn(account_id: str) -> str:
    return f"urn:li:sponsoredAccount:{account_id}"



class LinkedInCredentialsForm(CredentialsForm):
    secret_fields = ("client_secret", "access_token")
    help_steps = (
        "In the LinkedIn Developer Portal, open your app (it needs the Advertising API product with Matched "
        "Audiences access); Auth shows the client ID and client secret.",
        "Generate an access token for a member with the rw_ads and rw_dmp_segments scopes (OAuth 2.0 tools). "
        "Tokens last 60 days: we re-check it daily and tell you before uploads fail.",
        "The ad account id is the number in Campaign Manager's URL (…/accounts/508123456/…).",
        "The source platform is the value LinkedIn assigned your app when it approved Matched Audiences access "
        "(ask your LinkedIn partner contact if you don't have it).",
    )

    client_id = forms.CharField(label="Client ID", max_length=100)
    client_secret = forms.CharField(label="Client secret", max_length=200, widget=SecretInput())
    access_token = forms.CharField(label="Access token", max_length=2048, widget=SecretInput())
    ad_account_id = forms.CharField(
        label="Ad account ID", max_length=60,
        help_text="Digits, e.g. 508123456 (the urn:li:sponsoredAccount: form is fine)",
    )
    source_platform = forms.CharField(
        label="Source platform", max_length=100,
        help_text="The sourcePlatform value LinkedIn assigned your app when it approved its Matched Audiences "
        "access (uppercase, e.g. YOUR_COMPANY). LinkedIn refuses segments created with any other value.",
    )
    mobile_ids = forms.ChoiceField(
        label="Mobile advertiser ids", choices=MOBILE_ID_CHOICES, initial="none",
        help_text="LinkedIn matches Android advertising ids (GAID) only; it no longer takes iOS IDFAs, and the two "
        "look alike. Send your lists' mobile ids only if they are all Android ids.",
    )

    def clean_ad_account_id(self):
        value = self.cleaned_data["ad_account_id"].strip().removeprefix("urn:li:sponsoredAccount:")
        return digits_id(value, field="The ad account ID")

    def clean_source_platform(self):
        value = self.cleaned_data["source_platform"].strip().upper()
        if not SOURCE_PLATFORM_RE.match(value):
            raise forms.ValidationError("Enter the value LinkedIn assigned your app: capital letters, digits and "
                                        "underscores, e.g. YOUR_COMPANY.")
        return value


class LinkedInAdapter(HttpAdapter):
    code = "linkedin"
    name = "LinkedIn"
    docs_url = "https://learn.microsoft.com/en-us/linkedin/marketing/matched-audiences/matched-audiences"
    # 202606 is not yet in LinkedIn's migrations table; versions are sunset about a year after release, mid-month
    # ("202603 (March 2026) ... March 16, 2027"), so mid-June 2027.
    api_version = ApiVersion(
        LINKEDIN_VERSION, "2027-06-15", estimated=True,
        source="https://learn.microsoft.com/en-us/linkedin/marketing/integrations/migrations",
    )
    endpoint_setting = "LINKEDIN_API_URL"
    endpoint = "https://api.linkedin.com/rest"
    sandbox_endpoint = "/linkedin/rest"
    sandbox_credentials = {
        "label": "Demo ad account",
        "client_id": "demo-linkedin-client",
        "client_secret": "demo-linkedin-secret",
        "access_token": "AQVdemo-linkedin-token",
        "ad_account_id": "508123456",
        "source_platform": "ACTIVATION_MANAGER",  # the value the sandbox "assigned" this demo app
        "mobile_ids": MOBILE_IDS_ANDROID,  # the sample file's mobile ids are Android ids
    }
    credentials_form = LinkedInCredentialsForm
    account_field = "ad_account_id"
    oauth = OAuthApp(
        authorize_url=f"{OAUTH_URL}/authorization", sandbox_authorize_path="/linkedin/oauth/v2/authorization",
        scopes=OAUTH_SCOPES, required_scopes=("rw_dmp_segments",),
        client_id_setting="LINKEDIN_OAUTH_CLIENT_ID", client_secret_setting="LINKEDIN_OAUTH_CLIENT_SECRET",
    )
    match_keys = {
        "email": (("e",), HEX),  # SHA256_EMAIL
        "maid": (("m",), RAW),  # GOOGLE_AID
    }
    identifier_keys = ("email", "maid")
    capabilities = Capabilities(
        batch_size=BATCH_SIZE,
        operations=frozenset(
            {Operation.CREATE, Operation.ADD, Operation.REMOVE, Operation.STATUS, Operation.DELETE}
        ),
        rate_limit=RateLimit(requests=30, per_seconds=60),
        min_audience_size=MIN_MATCHED,
    )

    auth_hint = AUTH_HINT

    # Plumbing ---------------------------------------------------------------------------
    @property
    def ad_account_id(self) -> str:
        value = str(self.credentials.get("ad_account_id", "")).strip()
        return value.removeprefix("urn:li:sponsoredAccount:")

    @property
    def source_platform(self) -> str:
        return str(self.credentials.get("source_platform") or "").strip()

    @property
    def sends_mobile_ids(self) -> bool:
        return self.credentials.get("mobile_ids") == MOBILE_IDS_ANDROID

    def session_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.credentials.get('access_token', '')}",
            "LinkedIn-Version": LINKEDIN_VERSION,
            "X-Restli-Protocol-Version": RESTLI_PROTOCOL,
            "Accept": "application/json",
        }

    def error_text(self, response: requests.Response) -> str:
        """LinkedIn's error text: ``message`` with its ``serviceErrorCode`` when present."""
        text = error_message(response, "message")
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("serviceErrorCode") is not None:
            text = f"{text} (serviceErrorCode {body['serviceErrorCode']})"
        return text

    @staticmethod
    def _segment_path(audience_id: str, *rest: str) -> str:
        return path_of("dmpSegments", audience_id, *rest)

    # The interface ----------------------------------------------------------------------
    def validate_credentials(self) -> ValidationResult:
        """The token must reach the ad account, and the account must be usable (not canceled / removed)."""
        if not self.ad_account_id.isdigit():
            raise PermanentError(f"{self.name}: the ad account id must be digits, e.g. 508123456.")
        account = self.call("GET", path_of("adAccounts", self.ad_account_id))
        status = str(account.get("status") or "")
        if status in {"CANCELED", "REMOVED", "PENDING_DELETION"}:
            raise PermanentError(f"{self.name}: ad account {self.ad_account_id} is {status.lower()}; "
                                 "choose an active account.")
        return ValidationResult(
            account_name=str(account.get("name") or self.ad_account_id),
            details={
                "ad_account_id": self.ad_account_id,
                "status": status,
                "currency": account.get("currency", ""),
                "type": account.get("type", ""),
                "api_version": LINKEDIN_VERSION,
                "source_platform": self.source_platform or "not set",
            },
        )

    def create_audience(self, name: str, description: str = "") -> str:
        """Create a USER DMP segment for the ad account, with the audience's description when it has one."""
        if not self.source_platform:
            raise PermanentError(
                f"{self.name}: this connection has no source platform. LinkedIn creates segments only with the "
                "sourcePlatform value it assigned your app; edit the connection and enter it.",
                code="SOURCE_PLATFORM_MISSING",
            )
        body = {
            "name": name[:MAX_SEGMENT_NAME],
            "sourcePlatform": self.source_platform,
            "account": account_urn(self.ad_account_id),
            "accessPolicy": "PRIVATE",
            "type": "USER",
            "destinations": [{"destination": "LINKEDIN"}],
        }
        if description.strip():
            body["description"] = description.strip()
        try:
            response = self.request("POST", "/dmpSegments", json=body)
        except PermanentError as exc:
            if "sourceplatform" not in exc.message.lower():
                raise
            raise PermanentError(
                f"{exc.message}. LinkedIn refused the source platform {self.source_platform!r}: enter the value "
                "LinkedIn assigned your app on the connection.", code=exc.code) from None
        segment_id = response.headers.get("x-restli-id") or response.headers.get("x-linkedin-id")
        if not segment_id:
            location = response.headers.get("Location", "")
            segment_id = location.rstrip("/").rsplit("/", 1)[-1] if location else ""
        if not segment_id:
            raise PermanentError(f"{self.name}: the segment was not created (no id in the answer).")
        return str(segment_id)

    def add_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        return self._stream(audience_id, batch, action="ADD")

    def remove_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        return self._stream(audience_id, batch, action="REMOVE")

    def status(self, audience_id: str) -> AudienceStatus:
        segment = self.call("GET", self._segment_path(audience_id))
        destinations = [d for d in segment.get("destinations") or [] if isinstance(d, dict)]
        destination = next((d for d in destinations if d.get("destination") == "LINKEDIN"), {})
        matched = as_int(destination.get("matchedCount"))
        size = as_int(destination.get("audienceSize"))
        submitted = as_int(segment.get("inputCount"))
        match_rate = None
        if matched is not None and submitted:
            match_rate = min(1.0, matched / submitted)
        state = str(destination.get("status") or segment.get("status") or "").upper()
        return AudienceStatus(
            size=size,
            matched=matched,
            match_rate=match_rate,
            state=state.lower() or "unknown",
            raw={
                "id": segment.get("id"),
                "name": segment.get("name"),
                "inputCount": submitted,
                "status": state,
                "destinationSegmentId": destination.get("destinationSegmentId"),
                "usable": matched is not None and matched >= MIN_MATCHED and state in READY_STATES | BUILDING_STATES,
            },
        )

    def delete_audience(self, audience_id: str) -> None:
        self.request("DELETE", self._segment_path(audience_id))

    # Token lifetime (introspection) and renewal (refresh token) -------------------------------------
    @classmethod
    def oauth_url(cls) -> str:
        """LinkedIn's OAuth root (``LINKEDIN_OAUTH_URL``; the sandbox's in demo mode and tests)."""
        if os.environ.get("LINKEDIN_OAUTH_URL"):
            return os.environ["LINKEDIN_OAUTH_URL"].rstrip("/")
        if oauth_sandbox():
            return settings.FAKE_PLATFORMS_URL.rstrip("/") + "/linkedin/oauth/v2"
        return OAUTH_URL

    def _client(self) -> tuple[str, str]:
        return str(self.credentials.get("client_id", "")), str(self.credentials.get("client_secret", ""))

    def introspect(self, token: str) -> dict:
        """introspectToken's answer for one of this connection's tokens."""
        client_id, client_secret = self._client()
        with build_session({"Accept": "application/json"}) as session:
            response = send(session, "POST", f"{self.oauth_url()}/introspectToken", platform=self.name,
                            data={"client_id": client_id, "client_secret": client_secret, "token": token})
        self.check(response)
        return self.decode(response)

    def token_expiry(self) -> TokenExpiry | None:
        refresh_token = str(self.credentials.get("refresh_token") or "")
        what = "refresh token" if refresh_token else "access token"
        info = self.introspect(refresh_token or str(self.credentials.get("access_token", "")))
        if not info.get("active") or str(info.get("status") or "active") != "active":
            raise AuthError(f"{self.name}: the {what} is {str(info.get('status') or 'no longer active')}. Sign in "
                            "with LinkedIn again or paste a new access token.")
        expires = as_int(info.get("expires_at"))
        if not expires:
            return None
        return TokenExpiry(dt.datetime.fromtimestamp(expires, tz=dt.UTC), what=what, source="token introspection")

    def renew_credentials(self) -> TokenRenewal | None:
        """With a refresh token: a new access token once fewer than RENEW_BEFORE_DAYS remain (the refresh token
        keeps its own end, LinkedIn's 365 days from the first sign-in)."""
        refresh_token = str(self.credentials.get("refresh_token") or "")
        if not refresh_token:
            return None
        access = self.introspect(str(self.credentials.get("access_token", "")))
        expires = as_int(access.get("expires_at")) or 0
        remaining = dt.datetime.fromtimestamp(expires, tz=dt.UTC) - timezone.now() if expires else dt.timedelta(0)
        if access.get("active") and remaining > dt.timedelta(days=RENEW_BEFORE_DAYS):
            return None
        token = oauth_flow.fetch_token(platform=self.name, token_url=f"{self.oauth_url()}/accessToken",
                                       client=self._client(), grant_type="refresh_token", refresh_token=refresh_token)
        secrets = {"access_token": str(token.get("access_token") or "")}
        if token.get("refresh_token") and token["refresh_token"] != refresh_token:
            secrets["refresh_token"] = str(token["refresh_token"])
        expiry = oauth_flow.expiry_in(token.get("refresh_token_expires_in"), what="refresh token")
        return TokenRenewal(secrets=secrets, expiry=expiry,
                            message="LinkedIn issued a new access token (valid 60 days) with the refresh token.")

    # Sign-in with LinkedIn -----------------------------------------------------------------------
    @classmethod
    def oauth_exchange(cls, *, code: str, redirect_uri: str, code_verifier: str | None,
                       client: tuple[str, str]) -> OAuthGrant:
        token = oauth_flow.fetch_token(platform=cls.name, token_url=f"{cls.oauth_url()}/accessToken", client=client,
                                       redirect_uri=redirect_uri, code=code)
        secrets = {"access_token": str(token.get("access_token") or "")}
        if token.get("refresh_token"):
            secrets["refresh_token"] = str(token["refresh_token"])
            expiry = oauth_flow.expiry_in(token.get("refresh_token_expires_in"), what="refresh token")
        else:
            expiry = oauth_flow.expiry_in(token.get("expires_in"))
        return OAuthGrant(secrets=secrets, scopes=oauth_flow.scopes_of(token), expiry=expiry)

    @classmethod
    def oauth_accounts(cls, *, grant: OAuthGrant, client: tuple[str, str]) -> list[OAuthAccount]:
        with cls({"access_token": grant.secrets.get("access_token", "")}) as adapter:
            body = adapter.call("GET", "/adAccountUsers?q=authenticatedUser")
            accounts = []
            for row in (body.get("elements") or [])[:MAX_AD_ACCOUNTS]:
                account_id = str((row or {}).get("account") or "").removeprefix("urn:li:sponsoredAccount:")
                if not account_id.isdigit():
                    continue
                try:
                    account = adapter.call("GET", path_of("adAccounts", account_id))
                except PermanentError:
                    account = {}
                role = str(row.get("role") or "").replace("_", " ").lower()
                status = str(account.get("status") or "")
                detail = ", ".join(part for part in (role, status.lower() if status != "ACTIVE" else "") if part)
                accounts.append(OAuthAccount(id=account_id, name=str(account.get("name") or account_id),
                                             detail=detail))
        return accounts

    # Streaming users --------------------------------------------------------------------
    def _stream(self, audience_id: str, batch: Sequence[PreparedMember], *, action: str) -> BatchResult:
        self.check_batch(batch)
        elements = []
        invalid = 0
        held_back = 0  # mobile ids not sent: the connection does not say they are Android ids
        id_types = ID_TYPES if self.sends_mobile_ids else tuple(t for t in ID_TYPES if t[0] != "maid")
        for member in batch:
            user_ids = [
                {"idType": id_type, "idValue": member[key]} for key, id_type in id_types if member.get(key)
            ]
            if not self.sends_mobile_ids and member.get("maid"):
                held_back += 1
            if not user_ids:
                invalid += 1
                continue
            elements.append({"action": action, "userIds": user_ids})
        messages: list[str] = []
        if invalid:
            messages.append(f"{invalid} of {len(batch)} people had no hashed email"
                            + (" or Android advertising id" if self.sends_mobile_ids else "")
                            + " LinkedIn takes and were skipped.")
        if held_back:
            messages.append(f"{held_back} people's mobile advertiser ids were not sent: LinkedIn matches Android "
                            "advertising ids only, and this connection does not say its ids are Android ids "
                            "(edit the connection to send them).")
        if not elements:
            return BatchResult(received=len(batch), invalid=invalid, messages=tuple(messages))
        try:
            response = self.request("POST", self._segment_path(audience_id, "users"), json={"elements": elements},
                                    headers={"X-RestLi-Method": "BATCH_CREATE"})
        except PermanentError as exc:
            if exc.code != 404:
                raise
            raise TransientError(f"{exc.message} (a new segment can take a few seconds to accept users; the batch "
                                 "will be sent again).", code=404) from None
        # BATCH_CREATE answers one status per element, in order; refused elements are counted, not raised.
        refused = 0
        for item in self.decode(response).get("elements") or []:
            if isinstance(item, dict) and int(item.get("status") or 201) >= 400:
                refused += 1
                if len(messages) < 4:
                    reason = item.get("error", {}).get("message") if isinstance(item.get("error"), dict) else None
                    messages.append(f"LinkedIn refused a person: {reason or 'HTTP ' + str(item.get('status'))}.")
        return BatchResult(received=len(batch), invalid=invalid + refused, messages=tuple(messages))
