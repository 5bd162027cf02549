"""TikTok: custom audiences through the Business API v1.3 (``Access-Token`` header).

TikTok answers (almost) everything with HTTP 200 and a body ``{"code", "message", "request_id", "data"}``;
``code`` 0 is success and every other value is an error, mapped to our vocabulary in ``ERROR_CODES`` /
``typed_error`` (HTTP 429 / 5xx from a proxy still go through ``raise_for_status``).

Which TikTok flow, and why. TikTok has two ways to fill a custom audience:

* the customer-file flow (``/dmp/custom_audience/file/upload/`` -> ``/dmp/custom_audience/create/`` with
  ``file_paths`` -> ``/dmp/custom_audience/update/`` with ``action`` APPEND / REMOVE / REPLACE). Its create call
  REQUIRES ``file_paths`` (an audience cannot be created empty), and TikTok documents that APPEND, REMOVE and
  REPLACE "fail if the audience size is less than 1,000 after the operation" (TikTok's SDK docs,
  ``CustomAudienceUpdateBody``). That does not fit our create-then-stream adapter contract, and it would make
  every removal from a small audience fail;
* the audience segment API, made for streaming partners: ``POST /segment/audience/`` ``{advertiser_id,
  custom_audience_name, action: "create"}`` -> ``data.audience_id`` (an empty audience), then ``POST
  /segment/mapping/`` ``{advertiser_ids, action: "add" | "delete", id_schema, batch_data}`` to add or remove
  hashed ids in batches. This is the flow Segment's production TikTok Audiences destination uses.

This adapter uses the segment API to create and to add / remove, and the ``/dmp/custom_audience/`` endpoints to
read status (``get``) and to delete, which work on every custom audience of the advertiser. Validation is
``GET /advertiser/info/?advertiser_ids=["..."]``.

Identifiers (SHA-256 lowercase hex, normalized by ``platforms.matchkeys``): email -> EMAIL_SHA256 (trimmed,
lowercased, "+" and what follows it removed from the local part: stored ``et``), phone -> PHONE_SHA256 (the E.164
digits WITHOUT "+": stored ``pd``), mobile advertiser id -> IDFA_SHA256 (SHA-256 of the lowercase id; Segment's
destination sends every advertising id under this type). ``batch_data`` holds one row per person: a list aligned
with ``id_schema`` whose cells are ``{"id", "audience_ids"}`` or ``{}`` when the person lacks that key.

Normalization, and the sources that decided it (TikTok Ads help; the API's hashed types are the customer file's):
- Email: "List of supported IDs and formats for a customer file" (updated August 2025,
  https://ads.tiktok.com/help/article/list-of-supported-ids-and-formats-for-a-customer-file): "Lowercase only";
  "Remove '+' and any characters following the '+' symbol until '@'." (for every domain). The July 2024 version also
  said "Remove all possible '.' within the username before '@'"; the August 2025 version no longer does, and we
  follow it (Segment's destination still removes every dot).
- Phone: the same page: "Remove symbols, including "+" sign ... Remove leading zeros ... Add country code if
  missing, even in the US"; "The US phone number (657)777-0000 is normalized to "16577770000". The international
  phone number 374-93-828222 is normalized to "37493828222"". TikTok's other help page ("How to create a Custom
  Audience with a customer file", updated September 2025) recommends "E164 format: "+"[country code][phone number]"
  and lists "Also Supported - Without "+"", but the SHA-256 it publishes for that example,
  65b7e6dcf6f4310f8d7cbfbd78289a753062fb054d6664fb9aaac5df66a422d4, is the hash of "37493828222" -- the digits
  without "+". TikTok's own hashed example decided it: PHONE_SHA256 is the hash of the digits (``pd``, Meta's form);
  tests/unit/test_matchkeys_tiktok_linkedin_examples.py pins it. Whether the segment API matches the "+" form too is
  unverified.
- MAID: "Case: all uppercase or all lowercase"; the example "5f3a2b18-9c4d-4e7f-b8e2-17d3a1e69b25" hashes to
  83dc3f5f32b9472613b0f038d36f22585a609d018af6f6067f50da318bf354bd (the lowercase id, as we send).

Errors (TikTok's "Appendix - Return Codes", https://business-api.tiktok.com/portal/docs?id=1737172488964097, as
harvested in api-evangelist/tiktok-ads ``errors/tiktok-ads-error-codes.yml``; names from TikTok's own SDK,
tiktok/tiktok-business-api-sdk ``tiktok_code.py``):
- 20001 "Partially successful" (ERROR_CODE_PARTIAL_OK): the request is accepted in part. TikTok documents no
  ``data`` shape for a partial answer of /segment/mapping/ (unverified); its batch endpoints report the refused part
  as ``data.error_list[]`` of ``{obj_id, error_message}`` (SDK ``smart_plus_adgroup_status_update.yml``). We read
  that shape (an entry names the hashed id it refused in ``obj_id`` or ``id``) and count the people it names as
  refused; without a list we cannot say who was refused and say so in the batch's messages.
- Throttling -> RateLimited: 40016 and 40100 "Requests made too frequently ... at the developer application level",
  40133 "... at the advertiser level" ("Advertiser ({ID})'s QPS ({current QPS}) reaches QPS limit {QPS limit} for
  current path, request is temporarily restricted."), 61000 (ERROR_CODE_TOO_MANY_REQUESTS_BL).
- Retryable -> TransientError: 40202 "Write or update entity conflict. Retry may resolve this issue.", 60001 "The
  system is in maintenance. Wait for the maintenance to complete and retry.", 40201 "Task is not ready", and the
  5xxxx system errors.
- Auth -> AuthError: 40001 (no permission), 40101, 40102 (expired), 40104 (empty), 40105 (invalid token), 40106
  (core user invalid), 40113 (app blocked), 40119 (developer and advertiser not the same company).

Limits (kept as constants; the numbers TikTok does not publish are OUR budgets, flagged):
- ``BATCH_SIZE`` 1,000 people per mapping request (UNCONFIRMED: TikTok's page was not found; 1,000 rows of three
  hashes is ~250 KB, and connectors such as Tealium's batch TikTok audience calls by 1,000).
- Rate: TikTok enforces per-app and per-advertiser QPS / QPM / QPD limits per endpoint and answers 40016, 40100
  or 40133 when exceeded; we budget 10 calls a second per advertiser and wait 60 s (or Retry-After) after one.
- An audience needs about 1,000 matched users before TikTok will serve it (``min_audience_size``).

Sign-in with TikTok (``oauth_*``): the advertiser authorises the app at ``https://business-api.tiktok.com/portal/auth
?app_id&state&redirect_uri`` (the app's permission scopes are chosen in its developer portal, not in the URL), and
TikTok comes back with ``auth_code`` (not ``code``) and ``state``; ``POST /oauth2/access_token/`` with the JSON body
``{app_id, secret, auth_code}`` answers, in TikTok's envelope, ``data: {access_token, advertiser_ids, scope}``; ``GET
/oauth2/advertiser/get/?app_id&secret`` lists the advertisers the token may operate (TikTok's Marketing API
authentication guide; the same shapes are documented by open-source connectors such as OWOX's TikTok Ads source).
That token endpoint is not RFC 6749's (a JSON body, the answer inside the envelope), so it goes through this
adapter's own request path, not Authlib. Long-term access tokens do not expire until the advertiser revokes them: no
``token_expiry``; PKCE is not offered.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Sequence
from urllib.parse import urlencode

import requests
from django import forms

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
    UploadSession,
    ValidationResult,
)
from platforms.adapters.http import DEFAULT_RETRY_AFTER, HttpAdapter, as_int, raise_for_status, retry_after_seconds
from platforms.errors import AuthError, PermanentError, PlatformError, RateLimited, TransientError, join_sentences
from platforms.forms import digits_id
from platforms.matchkeys import HEX, SHA

BATCH_SIZE = 1_000
MIN_AUDIENCE = 1_000
MAX_AUDIENCE_NAME = 128
# Our match key -> TikTok's id type, in id_schema order.
ID_TYPES: tuple[tuple[str, str], ...] = (
    ("email", "EMAIL_SHA256"),
    ("phone", "PHONE_SHA256"),
    ("maid", "IDFA_SHA256"),
)
AUTH_HINT = "Check the access token and that it is authorised for this advertiser."

# TikTok's return codes (see the module docstring for the sources).
PARTIAL_SUCCESS = 20001
RATE_LIMIT_CODES = frozenset({
    40016,  # requests made too frequently (developer application level)
    40100,  # requests made too frequently (developer application level)
    40133,  # requests made too frequently (advertiser level)
    61000,  # too many requests (TikTok's SDK: ERROR_CODE_TOO_MANY_REQUESTS_BL)
})
RETRYABLE_CODES = frozenset({
    40201,  # task is not ready: wait and try again
    40202,  # write or update entity conflict: "Retry may resolve this issue"
    60001,  # the system is in maintenance: wait and retry
})
AUTH_CODES = frozenset({
    40001,  # no permission to perform the related operation (this advertiser, this scope)
    40101,  # invalid app id / secret combination
    40102,  # access token expired
    40104,  # access token empty
    40105,  # "Access token is incorrect or has been revoked"
    40106,  # the core user is invalid (token and advertiser do not belong together)
    40113,  # the app has been blocked or does not exist
    40119,  # developer and advertiser do not belong to the same company
})
# 4xxxx otherwise: the request is wrong (40002 invalid parameter, ...) -> PermanentError.
# 5xxxx (50000 system error, 50002 service error, 51xxx, 52xxx): TikTok's side -> TransientError.


def typed_error(
    code: int, message: str, *, platform: str = "TikTok", retry_after: float | None = None
) -> PlatformError:
    """Our error for a TikTok business ``code`` (never 0, nor 20001: a partial success is a result)."""
    detail = f"{platform}: {message or 'error'} (code {code})"
    if code in RATE_LIMIT_CODES:
        return RateLimited(detail, retry_after=DEFAULT_RETRY_AFTER if retry_after is None else retry_after, code=code)
    if code in AUTH_CODES:
        return AuthError(join_sentences(detail, AUTH_HINT), code=code)
    if code in RETRYABLE_CODES or 50000 <= code < 60000:
        return TransientError(detail, code=code)
    return PermanentError(detail, code=code)


def refused_ids(data: object) -> list[str]:
    """The ids a partial success (20001) names as refused: ``data.error_list[]`` entries' ``obj_id`` / ``id``."""
    entries = data.get("error_list") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return []
    ids = []
    for entry in entries:
        if isinstance(entry, dict):
            value = entry.get("obj_id", entry.get("id"))
            if value is not None:
                ids.append(str(value))
    return ids


class TikTokCredentialsForm(CredentialsForm):
    secret_fields = ("app_secret", "access_token")
    help_steps = (
        "In TikTok for Business Developers → My Apps, open your app: the basic information shows the App ID "
        "and Secret.",
        "Authorise the app for your advertiser account; the long-term access token is returned by the "
        "oauth2/access_token step (or shown in the app's advertiser list).",
        "The advertiser id is in TikTok Ads Manager's account menu (a long number).",
    )

    app_id = forms.CharField(label="App ID", max_length=40)
    app_secret = forms.CharField(label="Secret", max_length=200, widget=SecretInput())
    access_token = forms.CharField(label="Access token", max_length=1024, widget=SecretInput())
    advertiser_id = forms.CharField(label="Advertiser ID", max_length=40)

    def clean_advertiser_id(self):
        return digits_id(self.cleaned_data["advertiser_id"], field="The advertiser ID")


class TikTokAdapter(HttpAdapter):
    code = "tiktok"
    name = "TikTok"
    docs_url = "https://business-api.tiktok.com/portal/docs?id=1739566528222210"
    # No sunset for v1.3 found in TikTok's pages (unverified).
    api_version = ApiVersion("v1.3")
    endpoint_setting = "TIKTOK_API_URL"
    endpoint = "https://business-api.tiktok.com/open_api/v1.3"
    sandbox_endpoint = "/tiktok/open_api/v1.3"
    sandbox_credentials = {
        "label": "Demo advertiser",
        "app_id": "7000000000000000001",
        "app_secret": "demo-tiktok-secret",
        "access_token": "demo-tiktok-access-token",
        "advertiser_id": "7100000000000000001",
    }
    credentials_form = TikTokCredentialsForm
    account_field = "advertiser_id"
    oauth = OAuthApp(
        authorize_url="https://business-api.tiktok.com/portal/auth", sandbox_authorize_path="/tiktok/portal/auth",
        scopes=(), client_id_setting="TIKTOK_OAUTH_APP_ID", client_secret_setting="TIKTOK_OAUTH_SECRET",
        code_param="auth_code", client_fields=("app_id", "app_secret"),
    )
    match_keys = {
        "email": (("et", "e"), HEX),  # EMAIL_SHA256 ("+suffix" removed)
        "phone": (("pd",), HEX),  # PHONE_SHA256: E.164 digits without "+" (TikTok's hashed example, see above)
        "maid": (("m",), SHA),  # IDFA_SHA256 / GAID_SHA256
    }
    identifier_keys = ("email", "phone", "maid")
    capabilities = Capabilities(
        batch_size=BATCH_SIZE,
        operations=frozenset(
            {Operation.CREATE, Operation.ADD, Operation.REMOVE, Operation.STATUS, Operation.DELETE}
        ),
        rate_limit=RateLimit(requests=10, per_seconds=1),
        min_audience_size=MIN_AUDIENCE,
    )

    auth_hint = AUTH_HINT

    # Plumbing ---------------------------------------------------------------------------
    @property
    def advertiser_id(self) -> str:
        return str(self.credentials.get("advertiser_id", "")).strip()

    def session_headers(self) -> dict[str, str]:
        # The raw token, no "Bearer" prefix: TikTok answers 40105 to a prefixed one.
        return {"Access-Token": str(self.credentials.get("access_token", "")), "Accept": "application/json"}

    def check(self, response: requests.Response) -> None:
        """TikTok answers HTTP 200 with ``{"code", "message", "data"}``: code 0 is success, any other is the error
        (typed by ``typed_error``). A proxy's 5xx / 429 without the envelope is read by its HTTP status."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "code" not in body:
            raise_for_status(response, platform=self.name, auth_hint=AUTH_HINT)
            raise TransientError(
                f"{self.name}: the answer was not TikTok's JSON envelope (HTTP {response.status_code})."
            )
        if response.status_code >= 400 and body.get("code") in (None, 0):
            raise_for_status(response, platform=self.name, message=str(body.get("message") or ""), auth_hint=AUTH_HINT)
        code = as_int(body.get("code"))
        if code is None:
            raise TransientError(f"{self.name}: the answer carried no usable code.")
        if code not in (0, PARTIAL_SUCCESS):  # a partial success is a result: the caller reads what was refused
            hint = response.headers.get("Retry-After")
            wait = retry_after_seconds(hint) if hint else None
            raise typed_error(code, str(body.get("message") or ""), platform=self.name, retry_after=wait)

    def decode(self, response: requests.Response) -> dict:
        """The ``data`` of a code-0 (or partial, 20001) answer."""
        data = super().decode(response).get("data")
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _id_list(*ids: str) -> str:
        """TikTok takes list parameters of GET calls as a JSON array in the query string."""
        return jsonlib.dumps([str(i) for i in ids])

    # Sign-in with TikTok ------------------------------------------------------------------------
    @classmethod
    def oauth_authorization_url(cls, *, client: tuple[str, str], redirect_uri: str, state: str,
                                code_verifier: str | None) -> str:
        # TikTok's own parameter names (app_id, no response_type or scope): not an RFC 6749 authorization request.
        query = urlencode({"app_id": client[0], "state": state, "redirect_uri": redirect_uri})
        return f"{cls.oauth_authorize_endpoint()}?{query}"

    @classmethod
    def oauth_exchange(cls, *, code: str, redirect_uri: str, code_verifier: str | None,
                       client: tuple[str, str]) -> OAuthGrant:
        with cls({}) as adapter:
            data = adapter.call("POST", "/oauth2/access_token/",
                                json={"app_id": client[0], "secret": client[1], "auth_code": code})
        token = str(data.get("access_token") or "")
        if not token:
            raise PermanentError(f"{cls.name}: the sign-in answered no access token; try again.")
        return OAuthGrant(secrets={"access_token": token},
                          scopes=frozenset(str(s) for s in data.get("scope") or []),
                          details={"advertiser_ids": [str(a) for a in data.get("advertiser_ids") or []]})

    @classmethod
    def oauth_accounts(cls, *, grant: OAuthGrant, client: tuple[str, str]) -> list[OAuthAccount]:
        with cls({"access_token": grant.secrets.get("access_token", "")}) as adapter:
            data = adapter.call("GET", "/oauth2/advertiser/get/", params={"app_id": client[0], "secret": client[1]})
        return [OAuthAccount(id=str(row["advertiser_id"]), name=str(row.get("advertiser_name") or row["advertiser_id"]))
                for row in data.get("list") or [] if isinstance(row, dict) and row.get("advertiser_id")]

    # The interface ----------------------------------------------------------------------
    def validate_credentials(self) -> ValidationResult:
        data = self.call("GET", "/advertiser/info/", params={"advertiser_ids": self._id_list(self.advertiser_id)})
        advertisers = [a for a in data.get("list") or [] if isinstance(a, dict)]
        advertiser = next((a for a in advertisers if str(a.get("advertiser_id")) == self.advertiser_id), None)
        if advertiser is None:
            raise PermanentError(f"{self.name}: advertiser {self.advertiser_id} was not found for this token. "
                                 "Check the advertiser ID.")
        status = str(advertiser.get("status") or "")
        if status in {"STATUS_DISABLE", "STATUS_LIMIT", "STATUS_SELF_SERVICE_UNAUDITED"}:
            raise PermanentError(f"{self.name}: advertiser {self.advertiser_id} cannot run ads ({status}).")
        return ValidationResult(
            account_name=str(advertiser.get("name") or self.advertiser_id),
            details={
                "advertiser_id": self.advertiser_id,
                "status": status,
                "currency": advertiser.get("currency", ""),
                "timezone": advertiser.get("timezone", ""),
            },
        )

    def create_audience(self, name: str, description: str = "") -> str:
        """Create an empty audience (TikTok audiences have no description)."""
        data = self.call("POST", "/segment/audience/", json={
            "advertiser_id": self.advertiser_id,
            "custom_audience_name": name[:MAX_AUDIENCE_NAME],
            "action": "create",
        })
        audience_id = data.get("audience_id")
        if not audience_id:
            raise PermanentError(f"{self.name}: the audience was not created (no audience_id in the answer).")
        return str(audience_id)

    def add_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        return self._map(audience_id, batch, action="add")

    def remove_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        return self._map(audience_id, batch, action="delete")

    def status(self, audience_id: str) -> AudienceStatus:
        data = self.call("GET", "/dmp/custom_audience/get/", params={
            "advertiser_id": self.advertiser_id,
            "custom_audience_ids": self._id_list(audience_id),
        })
        entries = [e for e in data.get("list") or [] if isinstance(e, dict)]
        details = next(
            (e.get("audience_details") or {} for e in entries
             if str((e.get("audience_details") or {}).get("audience_id")) == str(audience_id)),
            None,
        )
        if details is None:
            raise PermanentError(f"{self.name}: audience {audience_id} was not found.")
        size = details.get("cover_num")
        size = int(size) if isinstance(size, (int, float)) else None
        if details.get("is_expired"):
            state = "expired"
        elif details.get("is_valid"):
            state = "ready"
        else:
            state = "processing"
        return AudienceStatus(
            size=size,
            matched=size,
            state=state,
            raw={k: details.get(k) for k in ("audience_id", "name", "audience_type", "cover_num", "is_valid",
                                             "is_expired", "expired_time", "calculate_type") if k in details},
        )

    def delete_audience(self, audience_id: str) -> None:
        self.call("POST", "/dmp/custom_audience/delete/", json={
            "advertiser_id": self.advertiser_id,
            "custom_audience_ids": [str(audience_id)],
        })

    # Streaming ids ----------------------------------------------------------------------
    def _map(self, audience_id: str, batch: Sequence[PreparedMember], *, action: str) -> BatchResult:
        self.check_batch(batch)
        # Only the id types someone in this batch has, in a fixed order: fewer empty cells.
        schema = [(key, id_type) for key, id_type in ID_TYPES if any(m.get(key) for m in batch)]
        rows = []
        invalid = 0
        for member in batch:
            cells = [{"id": member[key], "audience_ids": [str(audience_id)]} if member.get(key) else {}
                     for key, _ in schema]
            if not any(cells):
                invalid += 1
                continue
            rows.append(cells)
        messages: list[str] = []
        if invalid:
            messages.append(f"{invalid} of {len(batch)} people had no hashed email, phone or mobile advertiser id "
                            "and were skipped.")
        if rows:
            response = self.request("POST", "/segment/mapping/", json={
                "advertiser_ids": [self.advertiser_id],
                "action": action,
                "id_schema": [id_type for _, id_type in schema],
                "batch_data": rows,
            })
            body = super().decode(response)
            if as_int(body.get("code")) == PARTIAL_SUCCESS:
                refused = self._refused_people(rows, refused_ids(body.get("data")))
                invalid += refused
                text = str(body.get("message") or "Partially successful").strip().rstrip(".")
                if refused:
                    messages.append(f"TikTok refused {refused} of {len(rows)} people in this batch (code 20001: "
                                    f"{text}).")
                else:
                    messages.append(f"TikTok accepted this batch only in part (code 20001: {text}) and did not say "
                                    "which people it refused; the audience size will show the effect.")
        return BatchResult(received=len(batch), invalid=invalid, messages=tuple(messages))

    @staticmethod
    def _refused_people(rows: list[list[dict]], ids: list[str]) -> int:
        """How many of the people sent (rows) hold an id TikTok named as refused; at most one count per person.
        Ids that match nobody sent are counted one person each (TikTok named a refusal we cannot place)."""
        if not ids:
            return 0
        wanted = set(ids)
        placed: set[str] = set()
        people = 0
        for cells in rows:
            hits = {cell["id"] for cell in cells if cell and cell["id"] in wanted}
            if hits:
                people += 1
                placed |= hits
        return min(len(rows), people + len(wanted - placed))
