"""Meta (Facebook / Instagram) customer-file custom audiences, through the official facebook-business SDK.

Every call goes through ``FacebookAdsApi.call`` on an API object built for this connection only:
``FacebookSession(app_id, app_secret, access_token, timeout=...)`` (the SDK then sends
``appsecret_proof`` = HMAC-SHA256(access_token, app_secret) with every request), its ``GRAPH``
URL set on the instance from ``settings.PLATFORM_ENDPOINTS["meta"]`` so tests and the demo reach a
local fake, and ``FacebookAdsApi(session, api_version=...)``. ``FacebookAdsApi.init()`` is never
used: it sets a process-wide default API and installs the SDK's crash reporter.

Members arrive already normalized and hashed (``platforms.matchkeys.platform_values``); they are
sent as they are, never through the SDK's ``add_users`` helper, which normalizes and hashes again.

Limits and choices (Graph API v26.0):
- 10,000 rows per users / usersreplace request (Meta's documented maximum).
- Rate limit: Meta publishes no fixed figure for custom audiences; its limits are business-use-case
  formulas per ad account. We budget 60 requests per minute per ad account (one 10,000-row batch a
  second is far above what a marketer's list needs), and honour Meta's own throttling answers
  (codes 4, 17, 32, 341, 613 and 80000-80099) with the wait its usage headers announce.
- Replace (``/usersreplace``): one replace session per audience at a time; it must complete within
  90 minutes, and the users edge must not be written while it runs (Meta's documentation; not
  verified here against a live account).

Token lifetime and sign-in with Meta (``token_expiry``, ``renew_credentials``, ``oauth_*``):
- https://developers.facebook.com/docs/graph-api/reference/debug_token : "This endpoint returns metadata about a
  given access token. This includes data such as the user for which the token was issued, whether the token is
  still valid, when it expires, and what permissions the app has for the given user." Its answer carries
  ``expires_at`` and ``data_access_expires_at`` (Unix seconds), ``is_valid``, ``type`` and ``scopes``. It is asked
  with the APP access token ``{app_id}|{app_secret}``: a system-user token cannot inspect itself, and Graph reports
  a token issued without an expiry as ``expires_at: 0`` (the Access Token Debugger's "Expires: Never") — both as
  established against a real Business Manager token in https://github.com/logly/mureo/pull/744 ("a permanent
  token ... was exchanged for a 60-day one: a strict downgrade"), so a token with ``expires_at`` 0 is never
  exchanged. User tokens: about 60 days; data access about 90 days, renewed only when the person signs in again.
- https://developers.facebook.com/docs/facebook-login/access-tokens : a long-lived token comes from
  ``GET /oauth/access_token?grant_type=fb_exchange_token&client_id={app-id}&client_secret={app-secret}
  &fb_exchange_token={token}``. Revalidation exchanges a user token once fewer than ``RENEW_BEFORE_DAYS`` remain.
- https://developers.facebook.com/docs/facebook-login/manually-build-a-login-flow : the login dialog
  ``https://www.facebook.com/{version}/dialog/oauth?client_id&redirect_uri&state&scope``; a refusal comes back as
  ``error=access_denied&error_reason=user_denied``; the code is exchanged with ``GET /oauth/access_token?client_id
  &redirect_uri&client_secret&code`` (a short-lived token, exchanged at once for a long-lived one). PKCE is not
  used (the manual flow's page documents none for a server-side app). Ad accounts: ``GET /me/adaccounts``.

Beside this module: ``meta_wire.py`` (the multi-key payload, the form encoding of request bodies, and the reading of
Meta's answers: batch counts, usage headers, token dates); its public names are importable from here as well.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import requests
from django import forms
from django.conf import settings
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession

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
    PlatformAdapter,
    PreparedMember,
    RateLimit,
    SecretInput,
    TokenExpiry,
    TokenRenewal,
    UploadSession,
    ValidationResult,
)
from platforms.adapters.meta_wire import (
    SCHEMA_KEYS,  # noqa: F401 - importable from here, as before the wire side moved out
    _as_int,
    _batch_result,
    _clean_message,
    _FastFormSession,
    _retry_after,
    _status_text,
    build_payload,
    form_encode,  # noqa: F401
    form_quote,  # noqa: F401
    token_expiry_of,
)
from platforms.errors import AuthError, PermanentError, PlatformError, RateLimited, TransientError, join_sentences
from platforms.forms import digits_id
from platforms.matchkeys import DOB_DAY, DOB_MONTH, DOB_YEAR, HEX, RAW, SHA, SHA_LOWER, SHA_ZIP

API_VERSION = "v26.0"

BATCH_SIZE = 10_000

# Meta's error codes (https://developers.facebook.com/docs/graph-api/guides/error-handling and the
# Marketing API rate-limiting page).
AUTH_CODES = {190, 102, 10, 200, 294}  # invalid/expired token, missing permission (10, 2xx)
THROTTLE_CODES = {4, 17, 32, 341, 613}  # app / user / page / ad-account request limits
TRANSIENT_CODES = {1, 2}  # unknown error, service temporarily unavailable
# Custom Audience Terms of Service not accepted: the customer-list ToS (subcode 1870090) and the older
# codes 2655 / 2663 ("Terms of service has not been accepted").
TERMS_SUBCODES = {1870090}
TERMS_CODES = {2655, 2663}
TERMS_URL = "https://business.facebook.com/ads/manage/customaudiences/tos/?act={account}"
# A user token is exchanged for a new long-lived one when fewer days than this remain.
RENEW_BEFORE_DAYS = 30
OAUTH_SCOPES = ("ads_management",)
MAX_AD_ACCOUNTS = 200

ACCOUNT_STATUS = {
    1: "active",
    2: "disabled",
    3: "unsettled",
    7: "pending risk review",
    8: "pending settlement",
    9: "in grace period",
    100: "pending closure",
    101: "closed",
    201: "any active",
    202: "any closed",
}



class MetaCredentialsForm(CredentialsForm):
    secret_fields = ("app_secret", "access_token")
    help_steps = (
        "Open Meta for Developers → My Apps and pick (or create) a Business app; Settings → Basic shows the "
        "App ID and App Secret.",
        "In Business Settings → Users → System users, generate a token for the app with the ads_management "
        "permission, and assign the system user to the ad account.",
        "The ad account id is in Ads Manager's account menu (act_ followed by digits; digits alone are fine).",
        "Accept the Custom Audience terms for the ad account once (Meta refuses uploads until you do).",
    )

    app_id = forms.CharField(label="App ID", max_length=32)
    app_secret = forms.CharField(label="App secret", max_length=128, widget=SecretInput())
    access_token = forms.CharField(label="Access token", max_length=1024, widget=SecretInput())
    ad_account_id = forms.CharField(label="Ad account ID", max_length=40, help_text="act_1234567890 or 1234567890")

    def clean_app_id(self):
        return digits_id(self.cleaned_data["app_id"], field="The App ID")

    def clean_ad_account_id(self):
        value = self.cleaned_data["ad_account_id"].strip()
        digits = value[4:] if value.lower().startswith("act_") else value
        if not digits.isdigit():
            raise forms.ValidationError("An ad account id is act_ followed by digits, e.g. act_1234567890.")
        return f"act_{digits}"


class MetaAdapter(PlatformAdapter):
    code = "meta"
    name = "Meta"
    docs_url = "https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences"
    # Meta publishes no expiry for v26.0 yet ("TBD"); its Marketing API versions have lived 12-13 months (v24.0:
    # 8 Oct 2025 -> 10 Nov 2026; v25.0: 18 Feb 2026 -> 23 Feb 2027), so about a year after 29 July 2026.
    api_version = ApiVersion(
        API_VERSION, "2027-07-29", estimated=True,
        source="https://developers.facebook.com/documentation/ads-commerce/marketing-api/marketing-api-changelog/versions",
    )
    endpoint_setting = "META_GRAPH_URL"
    endpoint = "https://graph.facebook.com"
    sandbox_endpoint = "/meta"
    sandbox_credentials = {
        "label": "Demo ad account",
        "app_id": "100200300",
        "app_secret": "demo-meta-app-secret",
        "access_token": "EAADemoAccessToken0001",
        "ad_account_id": "act_1234567890",
    }
    credentials_form = MetaCredentialsForm
    account_field = "ad_account_id"
    oauth = OAuthApp(
        authorize_url=f"https://www.facebook.com/{API_VERSION}/dialog/oauth",
        sandbox_authorize_path=f"/meta/{API_VERSION}/dialog/oauth",
        scopes=OAUTH_SCOPES, required_scopes=OAUTH_SCOPES, scope_separator=",",
        client_id_setting="META_OAUTH_CLIENT_ID", client_secret_setting="META_OAUTH_CLIENT_SECRET",
        client_fields=("app_id", "app_secret"),
    )
    match_keys = {
        "email": (("e",), HEX),
        "phone": (("pd",), HEX),  # digits with country code, no "+"
        "first_name": (("fn",), HEX),
        "last_name": (("ln",), HEX),
        "first_initial": (("fi",), SHA),
        "city": (("ct",), HEX),
        "state": (("st",), SHA),
        "postal_code": (("z",), SHA_ZIP),
        "country": (("c",), SHA_LOWER),
        "dob_year": (("dob",), DOB_YEAR),
        "dob_month": (("dob",), DOB_MONTH),
        "dob_day": (("dob",), DOB_DAY),
        "gender": (("g",), SHA),
        "external_id": (("x",), RAW),  # EXTERN_ID: sent as is
        "maid": (("m",), RAW),  # MADID: lowercase, not hashed
    }
    identifier_keys = ("email", "phone", "maid", "external_id")
    composite_identifier = ("first_name", "last_name", "first_initial", "city", "state", "postal_code", "country",
                            "dob_year", "dob_month", "dob_day", "gender")
    capabilities = Capabilities(
        batch_size=BATCH_SIZE,
        operations=frozenset(
            {Operation.CREATE, Operation.ADD, Operation.REMOVE, Operation.REPLACE, Operation.STATUS, Operation.DELETE}
        ),
        rate_limit=RateLimit(requests=60, per_seconds=60),
        # Meta does not deliver to (nor size) a customer list with fewer matched people than this.
        min_audience_size=100,
    )

    def __init__(self, credentials: Mapping[str, object]):
        super().__init__(credentials)
        self._api: FacebookAdsApi | None = None

    # Plumbing ---------------------------------------------------------------------------
    @property
    def ad_account(self) -> str:
        """The ad account as Graph addresses it: ``act_<digits>``."""
        value = str(self.credentials.get("ad_account_id", "")).strip()
        return value if value.lower().startswith("act_") else f"act_{value}"

    @property
    def api(self) -> FacebookAdsApi:
        if self._api is None:
            session = FacebookSession(
                app_id=str(self.credentials.get("app_id", "")),
                app_secret=str(self.credentials.get("app_secret", "")) or None,
                access_token=str(self.credentials.get("access_token", "")),
                timeout=settings.PLATFORM_HTTP_TIMEOUT,
            )
            session.GRAPH = self.base_url
            session.requests = _FastFormSession.replacing(session.requests)
            self._api = FacebookAdsApi(session, api_version=API_VERSION)
        return self._api

    def _call(self, method: str, path: tuple[str, ...], params: dict | None = None) -> dict:
        """One Graph request; Meta's errors become ours. Returns the decoded JSON answer."""
        try:
            response = self.api.call(method, path, params=params or {})
        except FacebookRequestError as exc:
            raise self._translate(exc) from None
        except requests.Timeout:
            raise TransientError(
                f"Meta did not answer within {settings.PLATFORM_HTTP_TIMEOUT:g} s; the request will be retried."
            ) from None
        except requests.RequestException:
            # The exception text carries the URL, whose query string holds the access token: never show it.
            raise TransientError("Could not reach Meta (connection failed); the request will be retried.") from None
        status = response.status() or 200
        body = response.json()
        if status >= 400:
            # The SDK takes a non-JSON error page (a proxy's "Internal Server Error") for a success.
            text = f"Meta answered HTTP {status}."
            if status == 429:
                raise RateLimited(text, retry_after=_retry_after(response.headers()), code=status)
            if status >= 500:
                raise TransientError(f"{text} The request will be retried.", code=status)
            raise PermanentError(text, code=status)
        return body if isinstance(body, dict) else {}

    def _translate(self, exc: FacebookRequestError) -> PlatformError:
        code = _as_int(exc.api_error_code())
        subcode = _as_int(exc.api_error_subcode())
        status = exc.http_status() or 0
        message = _clean_message(exc.api_error_message()) or f"HTTP {status}"
        detail = f"Meta: {message}"
        if subcode in TERMS_SUBCODES or code in TERMS_CODES:
            account = self.ad_account.removeprefix("act_")
            return PermanentError(join_sentences(
                detail, f"Accept Meta's Custom Audience terms for ad account {self.ad_account} at "
                f"{TERMS_URL.format(account=account)} (once, as a person with admin access), then sync again."),
                code=code,
            )
        if code == 100 and "appsecret_proof" in message:
            # A proof the platform refuses means the App secret does not belong to the token's app.
            return AuthError(join_sentences(
                detail, "Check the App secret: it must be the secret of the app the token was made for."), code=code)
        if code in THROTTLE_CODES or (code is not None and 80000 <= code <= 80099):
            return RateLimited(detail, retry_after=_retry_after(exc.http_headers()), code=code)
        if code in AUTH_CODES or (code is not None and 200 <= code <= 299):
            hint = ""
            if code == 190:
                # No "update the connection": the same words answer a connect form, before there is one.
                hint = "Generate a new access token (system-user tokens do not expire)."
            return AuthError(join_sentences(detail, hint), code=code)
        if code in TRANSIENT_CODES or status >= 500 or status == 0 or exc.api_transient_error():
            return TransientError(detail, code=code or status or None)
        return PermanentError(detail, code=code or status or None)

    # The interface ----------------------------------------------------------------------
    def validate_credentials(self) -> ValidationResult:
        """The token works (GET /me) and reaches an active ad account (GET /act_<id>)."""
        me = self._call("GET", ("me",), {"fields": "id,name"})
        account = self._call("GET", (self.ad_account,), {"fields": "id,name,account_status,tos_accepted"})
        status = _as_int(account.get("account_status"))
        if status != 1:
            label = ACCOUNT_STATUS.get(status, f"status {status}")
            raise AuthError(
                f"Meta: ad account {self.ad_account} is {label}; custom audiences need an active ad account."
            )
        terms = account.get("tos_accepted")
        return ValidationResult(
            account_name=str(account.get("name") or self.ad_account),
            details={
                "ad_account_id": self.ad_account,
                "user": str(me.get("name") or me.get("id") or ""),
                # Known only when Meta reports it; uploads are refused until the terms are accepted.
                "custom_audience_terms_accepted": (
                    bool(terms.get("custom_audience_tos")) if isinstance(terms, dict) else None
                ),
            },
        )

    def create_audience(self, name: str, description: str = "") -> str:
        body = self._call(
            "POST",
            (self.ad_account, "customaudiences"),
            {
                "name": name,
                "description": description,
                "subtype": "CUSTOM",
                "customer_file_source": "USER_PROVIDED_ONLY",
            },
        )
        audience_id = body.get("id")
        if not audience_id:
            raise TransientError("Meta created no audience id; the request will be retried.")
        return str(audience_id)

    def add_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        return self._send_users("POST", audience_id, "users", batch, session)

    def remove_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        # Lower-case "delete" on purpose: the SDK's call() puts GET/DELETE parameters in the query string,
        # and 10,000 hashed rows do not fit in a URL (Meta answers an error page, loopback servers 414).
        # Any other spelling goes in the form body; requests upper-cases the verb, so Meta gets
        # "DELETE /{id}/users" with an urlencoded body, as in Meta's own curl examples.
        return self._send_users("delete", audience_id, "users", batch, session)

    def replace_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession
    ) -> BatchResult:
        """One batch of a replace session: when its last batch lands, the audience holds exactly these members."""
        if session is None:
            raise ValueError("Meta's users-replace needs an upload session")
        return self._send_users("POST", audience_id, "usersreplace", batch, session)

    def status(self, audience_id: str) -> AudienceStatus:
        body = self._call(
            "GET",
            (str(audience_id),),
            {
                "fields": "name,approximate_count_lower_bound,approximate_count_upper_bound,"
                "delivery_status,operation_status"
            },
        )
        lower = _as_int(body.get("approximate_count_lower_bound"))
        upper = _as_int(body.get("approximate_count_upper_bound"))
        # Meta answers -1 while it has no estimate (e.g. too few matched people).
        lower = lower if lower is not None and lower >= 0 else None
        upper = upper if upper is not None and upper >= 0 else None
        size = (lower + upper) // 2 if lower is not None and upper is not None else lower
        return AudienceStatus(
            size=size,
            size_lower=lower,
            size_upper=upper,
            state=_status_text(body.get("operation_status")) or _status_text(body.get("delivery_status")),
            raw={k: body.get(k) for k in ("name", "delivery_status", "operation_status") if k in body},
        )

    def delete_audience(self, audience_id: str) -> None:
        self._call("DELETE", (str(audience_id),))

    # Token lifetime (debug_token) and renewal (fb_exchange_token) ---------------------------------
    def debug_token(self) -> dict:
        """debug_token's ``data`` for this connection's token, asked with the app access token."""
        app_id = str(self.credentials.get("app_id", ""))
        app_secret = str(self.credentials.get("app_secret", ""))
        body = self._graph_get("debug_token", {"input_token": str(self.credentials.get("access_token", "")),
                                                "access_token": f"{app_id}|{app_secret}"})
        data = body.get("data")
        return data if isinstance(data, dict) else {}

    def token_expiry(self) -> TokenExpiry | None:
        return token_expiry_of(self.debug_token())

    def renew_credentials(self) -> TokenRenewal | None:
        """A user token with fewer than RENEW_BEFORE_DAYS left is exchanged for a new long-lived one; a token that
        never expires (expires_at 0: a system user's) is left alone."""
        info = self.debug_token()
        if str(info.get("type") or "").upper() != "USER":
            return None
        expires = _as_int(info.get("expires_at")) or 0
        if not expires or expires - time.time() > RENEW_BEFORE_DAYS * 86_400:
            return None
        token = self._exchange(str(self.credentials.get("access_token", "")),
                               (str(self.credentials.get("app_id", "")), str(self.credentials.get("app_secret", ""))))
        renewed = type(self)({**self.credentials, "access_token": token})
        expiry = token_expiry_of(renewed.debug_token())
        return TokenRenewal(secrets={"access_token": token}, expiry=expiry,
                            message="Meta exchanged the access token for a new long-lived one.")

    def _graph_get(self, path: str, params: dict) -> dict:
        """A GET that is not signed with this connection's token (debug_token, the token endpoint): requests
        directly, Meta's error answers translated as every other call's."""
        from platforms.adapters.http import build_session, send

        url = f"{self.base_url}/{API_VERSION}/{path}"
        with build_session() as session:
            response = send(session, "GET", url, platform=self.name, params=params)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or (isinstance(body, dict) and "error" in body):
            raise self._translate(FacebookRequestError(
                "Meta refused the request", {"method": "GET", "path": path}, response.status_code,
                dict(response.headers), response.text)) from None
        return body if isinstance(body, dict) else {}

    @classmethod
    def _exchange(cls, token: str, client: tuple[str, str]) -> str:
        """A long-lived user token for ``token`` (fb_exchange_token)."""
        answer = cls({"app_id": client[0], "app_secret": client[1]})._graph_get("oauth/access_token", {
            "grant_type": "fb_exchange_token", "client_id": client[0], "client_secret": client[1],
            "fb_exchange_token": token})
        new_token = str(answer.get("access_token") or "")
        if not new_token:
            raise TransientError("Meta's token exchange answered no token; try again.")
        return new_token

    # Sign-in with Meta ---------------------------------------------------------------------
    @classmethod
    def oauth_exchange(cls, *, code: str, redirect_uri: str, code_verifier: str | None,
                       client: tuple[str, str]) -> OAuthGrant:
        """The code -> a short-lived token -> a long-lived one; its scopes and expiry from debug_token."""
        short = oauth_flow.fetch_token(
            platform=cls.name, token_url=f"{cls.endpoint_url().rstrip('/')}/{API_VERSION}/oauth/access_token",
            client=client, redirect_uri=redirect_uri, method="GET", auth_method="client_secret_query", code=code)
        token = cls._exchange(str(short.get("access_token") or ""), client)
        info = cls({"app_id": client[0], "app_secret": client[1], "access_token": token}).debug_token()
        if not info.get("is_valid", True):
            raise AuthError("Meta: the new access token is not valid; sign in again.")
        return OAuthGrant(secrets={"access_token": token}, scopes=frozenset(str(s) for s in info.get("scopes") or []),
                          expiry=token_expiry_of(info))

    @classmethod
    def oauth_accounts(cls, *, grant: OAuthGrant, client: tuple[str, str]) -> list[OAuthAccount]:
        adapter = cls({"app_id": client[0], "app_secret": client[1], **grant.secrets})
        body = adapter._call("GET", ("me", "adaccounts"), {"fields": "id,name,account_status",
                                                           "limit": MAX_AD_ACCOUNTS})
        accounts = []
        for row in body.get("data") or []:
            if not isinstance(row, dict) or not row.get("id"):
                continue
            status = _as_int(row.get("account_status"))
            detail = "" if status == 1 else ACCOUNT_STATUS.get(status, f"status {status}")
            accounts.append(OAuthAccount(id=str(row["id"]), name=str(row.get("name") or row["id"]), detail=detail))
        return accounts

    # Users edge -------------------------------------------------------------------------
    def _send_users(
        self, method: str, audience_id: str, edge: str, batch: Sequence[PreparedMember], session: UploadSession | None
    ) -> BatchResult:
        if not batch:
            return BatchResult(received=0)
        self.check_batch(batch)
        params: dict = {"payload": build_payload(batch)}
        if session is not None:
            params["session"] = {
                "session_id": session.session_id,
                "batch_seq": session.batch_seq,
                "last_batch_flag": session.last_batch,
                "estimated_num_total": session.estimated_total,
            }
        body = self._call(method, (str(audience_id), edge), params)
        return _batch_result(body, sent=len(batch))
