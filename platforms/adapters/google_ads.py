"""Google Ads Customer Match, through the official google-ads library (API v26): for accounts Google still allowlists.

Google Ads developer blog, 4 March 2026, "Changes to Customer Match support in the Google Ads API": from 1 April 2026
the Google Ads API accepts no new adopters of Customer Match; developer tokens that had not uploaded between October
2025 and March 2026 get CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE from OfflineUserDataJobService. That error is an
AuthError here whose message sends the marketer to the "Google (Data Manager API)" connection
(platforms/adapters/google_datamanager.py). It surfaces at the first upload: validation stays one read-only query
(no side-effect-free call of OfflineUserDataJobService is known to report the allowlist). Developer tokens were
sunset in September 2026: the token is optional (sent only when the connection has one).

Flow (Google's recommended Customer Match flow):
- ``create_audience``: ``UserListService.MutateUserLists`` creates a CRM-based user list (CONTACT_INFO,
  FIRST_PARTY). The audience id we hand back is the list's resource name ``customers/{cid}/userLists/{id}``.
- ``add_members`` / ``remove_members``: an ``OfflineUserDataJob`` of type CUSTOMER_MATCH_USER_LIST (consent
  ``ad_user_data`` / ``ad_personalization`` from the connection on add jobs; Google needs no consent to remove),
  ``AddOfflineUserDataJobOperations`` with ``enable_partial_failure`` in requests of at most 10,000 identifiers,
  then ``RunOfflineUserDataJob``. Google processes jobs for hours: the adapter never waits on the long-running
  operation; ``status()`` reports the latest job's state. With an ``UploadSession`` every batch of a session goes
  into one job (Google: one large job is far more efficient than many small ones), found again through the job's
  ``external_id`` = session id, and the job runs after the last batch; without a session each call is its own job.
- ``status``: GoogleAdsService.Search on the user list (sizes, match rate, membership status) and on its latest job.
- ``delete_audience``: a ``remove`` operation on the user list.

Transport: ``GoogleAdsClient.get_service`` always opens a TLS channel and offers no way to pass channel
credentials; patching the transport class would be process-wide. So the adapter assembles the stack
``get_service`` builds — transport ``create_channel`` with the OAuth credentials, the library's
``MetadataInterceptor`` (developer-token, login-customer-id) and ``ExceptionInterceptor`` (GoogleAdsException),
the transport, the service client — on one channel of its own. The only difference between production and the
loopback fake is the channel credentials: TLS, or gRPC local credentials when ``GRPC_PLAINTEXT_LOOPBACK``
(tests / demo; never in production, where the setting is forced off). The OAuth token is refreshed before each
call (``GOOGLE_OAUTH_TOKEN_URL``) so an ``invalid_grant`` surfaces as an AuthError, not as a gRPC failure.

Limits and choices (Google Ads API docs, Customer Match guide and reference, v26):
- Up to 100,000 identifiers per AddOfflineUserDataJobOperations request, 20 per UserData; Google advises at most
  10,000 identifiers per call for best processing, which is what we send. 10,000 members per adapter batch.
- membership_life_span: 540 days, the maximum since April 2025 (10000 = "no expiry" now fails RangeError.TOO_HIGH).
- Identifiers: hashed_email, hashed_phone_number (E.164 with "+", hashed) and address_info (hashed first / last
  name, country code and postal code unhashed; Google needs all four). The exact strings come from
  ``platforms.matchkeys.platform_values("google_ads", ...)``. mobile_id and third_party_user_id belong to
  MOBILE_ADVERTISING_ID / CRM_ID lists, which this CONTACT_INFO adapter does not create.
- Serving: Google's help centre states a minimum of 100 active matched users (Display, Search, YouTube).
- Rate: Google publishes no fixed per-account request rate (quota is per developer token: 15,000 operations / day
  at Basic access); we budget 60 requests a minute per customer and honour Google's retry delay when it throttles.

Beside this module: ``google_ads_form.py`` (the credential form) and ``google_ads_wire.py`` (the job operations
built as raw protobuf, the partial failures and Google's error codes read back); their public names are importable
from here as well.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import metadata as package_metadata

import grpc
from django.conf import settings
from google.ads.googleads.errors import GoogleAdsException
from google.ads.googleads.interceptors.exception_interceptor import ExceptionInterceptor
from google.ads.googleads.interceptors.metadata_interceptor import MetadataInterceptor
from google.ads.googleads.v26.common.types.consent import Consent
from google.ads.googleads.v26.common.types.offline_user_data import (
    CustomerMatchUserListMetadata,
)
from google.ads.googleads.v26.common.types.user_lists import CrmBasedUserListInfo
from google.ads.googleads.v26.errors.types.errors import GoogleAdsFailure
from google.ads.googleads.v26.resources.types.offline_user_data_job import OfflineUserDataJob
from google.ads.googleads.v26.resources.types.user_list import UserList
from google.ads.googleads.v26.services.services.google_ads_service import GoogleAdsServiceClient
from google.ads.googleads.v26.services.services.offline_user_data_job_service import (
    OfflineUserDataJobServiceClient,
)
from google.ads.googleads.v26.services.services.user_list_service import UserListServiceClient
from google.ads.googleads.v26.services.types import google_ads_service as gas
from google.ads.googleads.v26.services.types import offline_user_data_job_service as oudj
from google.ads.googleads.v26.services.types import user_list_service as uls
from google.api_core import exceptions as api_exceptions
from google.api_core.gapic_v1.client_info import ClientInfo
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import Request as AuthRequest
from google.oauth2.credentials import Credentials

from platforms.adapters import google_oauth
from platforms.adapters.base import (
    ApiVersion,
    AudienceStatus,
    BatchResult,
    Capabilities,
    Operation,
    PlatformAdapter,
    PreparedMember,
    RateLimit,
    UploadSession,
    ValidationResult,
)
from platforms.adapters.google_ads_form import GoogleAdsCredentialsForm
from platforms.adapters.google_ads_wire import (
    _error_code,
    _refresh_message,
    _retry_delay,
    build_operations,
    chunk_operations,
    partial_failures,
    user_identifiers,  # noqa: F401 - importable from here, as before the wire side moved out
)
from platforms.adapters.grpc_channel import channel_credentials
from platforms.errors import AuthError, PermanentError, PlatformError, RateLimited, TransientError, join_sentences
from platforms.matchkeys import HEX, RAW

API_VERSION = "v26"
SCOPE = "https://www.googleapis.com/auth/adwords"
BATCH_SIZE = 10_000  # members per add_members / remove_members call
IDENTIFIERS_PER_REQUEST = 10_000  # Google's advice per AddOfflineUserDataJobOperations call (hard limit 100,000)
MEMBERSHIP_LIFE_SPAN = 540  # days: Google's maximum since April 2025
MIN_SERVING_SIZE = 100
DEFAULT_RETRY_AFTER = 30.0
# The channel options GoogleAdsClient.get_service uses (large metadata for GoogleAdsFailure trailers).
CHANNEL_OPTIONS = [("grpc.max_metadata_size", 16 * 1024 * 1024), ("grpc.max_receive_message_length", 64 * 1024 * 1024)]

AUTH_FIELDS = {"authentication_error", "authorization_error"}
TERMS_CODES = {"CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS"}
NOT_ALLOWLISTED_CODES = {"CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE"}
NOT_ALLOWLISTED_HELP = (
    "Google no longer takes Customer Match uploads through the Google Ads API for customer {customer}: since 1 April "
    "2026 only accounts that uploaded between October 2025 and March 2026 are allowlisted. Connect this account with "
    "\"Google (Data Manager API)\" on the Platforms page instead (no developer token needed) and move its syncs there."
)
TRANSIENT_CODES = {("database_error", "CONCURRENT_MODIFICATION")}
TRANSIENT_STATUS = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.UNKNOWN,
}
AUTH_STATUS = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
FAILURE_KEY = f"google.ads.googleads.{API_VERSION}.errors.googleadsfailure-bin"
# The x-goog-api-client identification GoogleAdsClient sends (Google reads the library version from it).
CLIENT_INFO = ClientInfo(client_library_version=package_metadata.version("google-ads"))
TERMS_HELP = (
    "Accept the Customer Match terms in Google Ads (Tools → Shared library → Audience manager) for customer "
    "{customer}, and check the connection's consent settings: Google refuses uploads when ad user data or ad "
    "personalization consent is DENIED."
)
LIST_NAME = re.compile(r"^customers/(\d{10})/userLists/(\d+)$")

SERVICE_CLIENTS = {
    "GoogleAdsService": GoogleAdsServiceClient,
    "UserListService": UserListServiceClient,
    "OfflineUserDataJobService": OfflineUserDataJobServiceClient,
}


class _TimedRequest(AuthRequest):
    """google-auth's HTTP request with our timeout (its default is 120 s)."""

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        return super().__call__(url, method=method, body=body, headers=headers,
                                timeout=timeout or settings.PLATFORM_HTTP_TIMEOUT, **kwargs)


class GoogleAdsAdapter(google_oauth.GoogleSignIn, PlatformAdapter):
    code = "google_ads"
    name = "Google Ads API (allowlisted accounts)"
    docs_url = "https://developers.google.com/google-ads/api/docs/remarketing/audience-segments/customer-match"
    # Google's projected schedule (blog, 4 Sept 2025): "V26 | Major | October 2026 | November 2027"; "Each major
    # release will now be available for one year after the release". No exact day yet: the month's first day.
    api_version = ApiVersion(
        API_VERSION, "2027-11-01", estimated=True,
        source="https://developers.google.com/ads/blog/posts/2025/09/more-frequent-releases-coming-for",
    )
    endpoint_setting = "GOOGLE_ADS_ENDPOINT"
    endpoint = "googleads.googleapis.com:443"
    sandbox_endpoint = "127.0.0.1:8766"
    sandbox_credentials = {
        "label": "Demo customer",
        "client_id": "demo-client.apps.googleusercontent.com",
        "client_secret": "demo-google-client-secret",
        "developer_token": "demo-developer-token",
        "refresh_token": "1//demo-refresh-token",
        "customer_id": "123-456-7890",
        "login_customer_id": "",
        "consent_ad_user_data": "GRANTED",
        "consent_ad_personalization": "GRANTED",
    }
    credentials_form = GoogleAdsCredentialsForm
    account_field = "customer_id"
    # Sign-in with Google (platforms/adapters/google_oauth.py).
    oauth = google_oauth.oauth_app(google_oauth.ADWORDS_SCOPE, required=(google_oauth.ADWORDS_SCOPE,))
    match_keys = {
        "email": (("eg", "e"), HEX),  # gmail.com / googlemail.com: dots and "+suffix" removed
        "phone": (("p",), HEX),  # E.164 with "+"
        # Letters only: the Google Ads API reference asks for "lower case only and no punctuation" (the Data Manager
        # API takes Google's Formatter's form instead, see platforms/adapters/google_datamanager.py).
        "first_name": (("fn",), HEX),
        "last_name": (("ln",), HEX),
        "country": (("c",), RAW),  # address_info.country_code, uppercase, unhashed
        "postal_code": (("z",), RAW),  # address_info.postal_code, unhashed
    }
    identifier_keys = ("email", "phone")
    composite_identifier = ("first_name", "last_name", "country", "postal_code")  # address_info
    capabilities = Capabilities(
        batch_size=BATCH_SIZE,
        operations=frozenset({Operation.CREATE, Operation.ADD, Operation.REMOVE, Operation.STATUS, Operation.DELETE}),
        rate_limit=RateLimit(requests=60, per_seconds=60),
        min_audience_size=MIN_SERVING_SIZE,
    )

    def __init__(self, credentials: Mapping[str, object]):
        super().__init__(credentials)
        self._oauth: Credentials | None = None
        self._raw_channel: grpc.Channel | None = None  # closed by close()
        self._channel: grpc.Channel | None = None  # the intercepted one the services use
        self._services: dict[str, object] = {}

    # Plumbing ---------------------------------------------------------------------------
    @property
    def customer_id(self) -> str:
        return _digits(self.credentials.get("customer_id"))

    @property
    def login_customer_id(self) -> str:
        return _digits(self.credentials.get("login_customer_id"))

    @property
    def account_id(self) -> str:
        return self.customer_id

    @property
    def oauth_credentials(self) -> Credentials:
        if self._oauth is None:
            self._oauth = Credentials(
                token=None,
                refresh_token=str(self.credentials.get("refresh_token", "")),
                client_id=str(self.credentials.get("client_id", "")),
                client_secret=str(self.credentials.get("client_secret", "")),
                token_uri=settings.GOOGLE_OAUTH_TOKEN_URL,
                scopes=[SCOPE],
            )
        return self._oauth

    def _service(self, name: str):
        """A v26 service client on this adapter's own channel (see the module docstring)."""
        if name not in self._services:
            client_class = SERVICE_CLIENTS[name]
            transport_class = client_class.get_transport_class("grpc")
            if self._channel is None:
                channel = transport_class.create_channel(
                    host=self.endpoint_url(),
                    credentials=self.oauth_credentials,
                    options=CHANNEL_OPTIONS,
                    ssl_credentials=channel_credentials(),
                )
                self._raw_channel = channel
                self._channel = grpc.intercept_channel(
                    channel,
                    # An empty developer token is not sent (tokens are optional since their sunset).
                    MetadataInterceptor(str(self.credentials.get("developer_token") or ""),
                                        self.login_customer_id or None, None),
                    ExceptionInterceptor(API_VERSION, use_proto_plus=True),
                )
            self._services[name] = client_class(transport=transport_class(channel=self._channel,
                                                                          client_info=CLIENT_INFO))
        return self._services[name]

    def close(self) -> None:
        """Close the gRPC channel (the adapter opens a new one if used again)."""
        if self._raw_channel is not None:
            self._raw_channel.close()
        self._raw_channel = self._channel = None
        self._services.clear()

    def _ensure_token(self) -> None:
        credentials = self.oauth_credentials
        if credentials.valid:
            return
        try:
            credentials.refresh(_TimedRequest())
        except auth_exceptions.RefreshError as exc:
            raise AuthError(_refresh_message(exc)) from None
        except auth_exceptions.TransportError:
            raise TransientError(
                "Could not reach Google's OAuth token endpoint; the request will be retried."
            ) from None

    def _rpc(self, service: str, method: str, request):
        self._ensure_token()
        try:
            response = getattr(self._service(service), method)(
                request=request, retry=None, timeout=settings.PLATFORM_HTTP_TIMEOUT
            )
            # Search answers a pager whose later pages are further calls: read them here, inside the mapping.
            return list(response) if service == "GoogleAdsService" else response
        except GoogleAdsException as exc:
            raise self._translate(exc.error.code(), list(exc.failure.errors), request_id=exc.request_id) from None
        except api_exceptions.GoogleAPICallError as exc:
            failure = _failure_from_call(getattr(exc, "response", None))
            raise self._translate(exc.grpc_status_code, list(failure.errors) if failure else [],
                                  fallback=exc.message) from None
        except auth_exceptions.RefreshError as exc:  # the channel's own refresh (token expired mid-call)
            raise AuthError(_refresh_message(exc)) from None

    def _translate(self, status, errors, *, request_id: str | None = None, fallback: str = "") -> PlatformError:
        """Google's failure (error codes and gRPC status) as one of our typed errors."""
        codes = [_error_code(error) for error in errors]
        names = {name for _, name in codes}
        fields = {field for field, _ in codes}
        text = "; ".join(dict.fromkeys(f"{error.message} ({name})" for error, (_, name) in zip(errors, codes,
                                                                                                  strict=True)))
        status_name = status.name if isinstance(status, grpc.StatusCode) else str(status or "")
        detail = f"Google Ads: {text or fallback or status_name}"
        if request_id:
            detail += f" [request {request_id}]"
        code = codes[0][1] if codes else status_name or None
        if names & NOT_ALLOWLISTED_CODES:
            return AuthError(f"{detail} {NOT_ALLOWLISTED_HELP.format(customer=self.customer_id)}",
                             code="CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE")
        if fields & AUTH_FIELDS:
            return AuthError(join_sentences(
                detail, "Check the developer token, the refresh token and that the user can reach "
                f"customer {self.customer_id}"
                + (f" through manager {self.login_customer_id}." if self.login_customer_id else ".")), code=code)
        if status == grpc.StatusCode.RESOURCE_EXHAUSTED and not codes and "larger than max" in fallback:
            # gRPC's own message-size limit shares the throttling status; waiting would not help.
            return PermanentError(f"{detail} The request is too large for Google Ads.", code=status_name)
        if "quota_error" in fields or status == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return RateLimited(detail, retry_after=_retry_delay(errors) or DEFAULT_RETRY_AFTER, code=code)
        if names & TERMS_CODES:
            return PermanentError(join_sentences(detail, TERMS_HELP.format(customer=self.customer_id)), code=code)
        if "internal_error" in fields or set(codes) & TRANSIENT_CODES or status in TRANSIENT_STATUS:
            if not text:
                detail = f"Could not reach Google Ads ({status_name}); the request will be retried."
            return TransientError(detail, code=code)
        if status in AUTH_STATUS:
            return AuthError(detail, code=code)
        return PermanentError(detail, code=code)

    def _list_name(self, audience_id: str) -> str:
        """The user list's resource name, strictly validated: it goes into GAQL queries."""
        value = str(audience_id).strip()
        match = LIST_NAME.match(value)
        if match:
            if match.group(1) != self.customer_id:
                raise PermanentError(f"User list {value} belongs to another customer than {self.customer_id}.")
            return value
        if value.isdigit():
            return f"customers/{self.customer_id}/userLists/{value}"
        raise PermanentError(f"{value!r} is not a Google Ads user list id.")

    def _search(self, query: str) -> list[gas.GoogleAdsRow]:
        return self._rpc("GoogleAdsService", "search",
                         gas.SearchGoogleAdsRequest(customer_id=self.customer_id, query=query))

    # The interface ----------------------------------------------------------------------
    def validate_credentials(self) -> ValidationResult:
        rows = self._search("SELECT customer.id, customer.descriptive_name FROM customer LIMIT 1")
        customer = rows[0].customer if rows else None
        cid = self.customer_id
        formatted = f"{cid[:3]}-{cid[3:6]}-{cid[6:]}"
        return ValidationResult(
            account_name=(customer.descriptive_name if customer and customer.descriptive_name else formatted),
            details={
                "customer_id": formatted,
                "login_customer_id": self.login_customer_id,
                "consent_ad_user_data": self._consent("consent_ad_user_data"),
                "consent_ad_personalization": self._consent("consent_ad_personalization"),
            },
        )

    def create_audience(self, name: str, description: str = "") -> str:
        user_list = UserList(
            name=name,
            description=description,
            membership_status="OPEN",
            membership_life_span=MEMBERSHIP_LIFE_SPAN,
            crm_based_user_list=CrmBasedUserListInfo(upload_key_type="CONTACT_INFO", data_source_type="FIRST_PARTY"),
        )
        response = self._rpc("UserListService", "mutate_user_lists", uls.MutateUserListsRequest(
            customer_id=self.customer_id, operations=[uls.UserListOperation(create=user_list)]))
        if not response.results or not response.results[0].resource_name:
            raise TransientError("Google Ads created no user list; the request will be retried.")
        return response.results[0].resource_name

    def add_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        return self._upload("create", self._list_name(audience_id), batch, session)

    def remove_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        return self._upload("remove", self._list_name(audience_id), batch, session)

    def status(self, audience_id: str) -> AudienceStatus:
        list_name = self._list_name(audience_id)
        # GAQL has no bound parameters: list_name matched LIST_NAME (digits only) in _list_name.
        rows = self._search(
            "SELECT user_list.resource_name, user_list.name, user_list.size_for_display, user_list.size_for_search, "  # noqa: S608
            "user_list.match_rate_percentage, user_list.membership_status FROM user_list "
            f"WHERE user_list.resource_name = '{list_name}'"
        )
        if not rows:
            raise PermanentError(f"Google Ads has no user list {list_name} (was it removed?).")
        user_list = rows[0].user_list
        job = self._latest_job(list_name)
        size = max(user_list.size_for_display, user_list.size_for_search)
        rate = user_list.match_rate_percentage / 100 if "match_rate_percentage" in user_list else None
        membership = user_list.membership_status.name.lower()
        state = membership
        raw = {
            "name": user_list.name,
            "membership_status": user_list.membership_status.name,
            "size_for_display": user_list.size_for_display,
            "size_for_search": user_list.size_for_search,
        }
        if job is not None:
            raw["job_status"] = job.status.name
            raw["job"] = job.resource_name
            match_range = job.operation_metadata.match_rate_range.name
            if match_range not in ("UNSPECIFIED", "UNKNOWN"):
                # Google's estimate while the job runs, final once it is done (e.g. MATCH_RANGE_61_TO_70).
                raw["job_match_rate_range"] = match_range
            state = f"{membership}; last upload {job.status.name.lower()}"
            if job.status.name == "FAILED":
                raw["job_failure_reason"] = job.failure_reason.name
                state += f" ({job.failure_reason.name})"
        return AudienceStatus(size=size, matched=size, match_rate=rate, state=state, raw=raw)

    def delete_audience(self, audience_id: str) -> None:
        self._rpc("UserListService", "mutate_user_lists", uls.MutateUserListsRequest(
            customer_id=self.customer_id, operations=[uls.UserListOperation(remove=self._list_name(audience_id))]))

    # Upload (the seam a Data Manager API transport would replace) -----------------------
    def _upload(self, kind: str, list_name: str, batch: Sequence[PreparedMember],
                session: UploadSession | None) -> BatchResult:
        if not batch:
            return BatchResult(received=0)
        self.check_batch(batch)
        operations, unusable = build_operations(kind, batch)
        messages: list[str] = []
        if unusable:
            messages.append(f"{unusable} member(s) had no identifier Google Ads takes (an email, a phone, or first "
                            "and last name with country and postal code).")
        if not operations:
            return BatchResult(received=len(batch), invalid=unusable, messages=tuple(messages))
        job = self._job_for(kind, list_name, session)
        rejected: Counter = Counter()
        invalid = 0
        for chunk in chunk_operations(operations, IDENTIFIERS_PER_REQUEST):
            response = self._rpc("OfflineUserDataJobService", "add_offline_user_data_job_operations",
                                 oudj.AddOfflineUserDataJobOperationsRequest(
                                     resource_name=job, enable_partial_failure=True, operations=chunk))
            bad, reasons = partial_failures(response)
            invalid += bad
            rejected.update(reasons)
        if session is None or session.last_batch:
            self._run_job(job)
        if invalid:
            reasons = "; ".join(f"{reason} ×{count}" for reason, count in sorted(rejected.items()))
            messages.append(f"Google Ads rejected {invalid} member(s): {reasons}")
        return BatchResult(received=len(batch), invalid=unusable + invalid, messages=tuple(messages))

    def end_upload(self, audience_id: str) -> None:
        """Run every job still pending on the list: batches of a run that stopped before its last batch."""
        for job in self._pending_jobs(self._list_name(audience_id)):
            self._run_job(job.resource_name)

    def _pending_jobs(self, list_name: str) -> list[OfflineUserDataJob]:
        rows = self._search(  # a validated resource name: nothing else from outside
            "SELECT offline_user_data_job.resource_name, offline_user_data_job.external_id "  # noqa: S608
            "FROM offline_user_data_job WHERE offline_user_data_job.status = 'PENDING' "
            f"AND offline_user_data_job.customer_match_user_list_metadata.user_list = '{list_name}'"
        )
        return [row.offline_user_data_job for row in rows]

    def _run_job(self, job: str) -> None:
        # A long-running operation that Google processes for hours: status() reports it, nobody waits here.
        self._rpc("OfflineUserDataJobService", "run_offline_user_data_job",
                  oudj.RunOfflineUserDataJobRequest(resource_name=job))

    def _job_for(self, kind: str, list_name: str, session: UploadSession | None) -> str:
        """The pending job of this upload session (one job per session), or a new one.

        A pending job of another session holds batches of a run that stopped (its worker died before
        ``end_upload``): those batches count as sent, so the job is run now rather than left pending for ever.
        """
        if session is not None:
            mine = None
            for job in self._pending_jobs(list_name):
                if job.external_id == int(session.session_id):
                    mine = job.resource_name
                else:
                    self._run_job(job.resource_name)
            if mine:
                return mine
        metadata = CustomerMatchUserListMetadata(user_list=list_name)
        if kind == "create":  # Google requires consent to add people, not to remove them
            consent = Consent()
            for field, key in (("ad_user_data", "consent_ad_user_data"),
                               ("ad_personalization", "consent_ad_personalization")):
                value = self._consent(key)
                if value in ("GRANTED", "DENIED"):
                    setattr(consent, field, value)
            if consent.ad_user_data or consent.ad_personalization:  # UNSPECIFIED is 0: leave consent unset
                metadata.consent = consent
        job = OfflineUserDataJob(type_="CUSTOMER_MATCH_USER_LIST", customer_match_user_list_metadata=metadata)
        if session is not None:
            job.external_id = int(session.session_id)
        response = self._rpc("OfflineUserDataJobService", "create_offline_user_data_job",
                             oudj.CreateOfflineUserDataJobRequest(customer_id=self.customer_id, job=job))
        return response.resource_name

    def _latest_job(self, list_name: str) -> OfflineUserDataJob | None:
        rows = self._search(  # list_name is validated (digits only)
            "SELECT offline_user_data_job.resource_name, offline_user_data_job.status, "  # noqa: S608
            "offline_user_data_job.failure_reason, offline_user_data_job.operation_metadata.match_rate_range "
            "FROM offline_user_data_job WHERE offline_user_data_job.type = 'CUSTOMER_MATCH_USER_LIST' "
            f"AND offline_user_data_job.customer_match_user_list_metadata.user_list = '{list_name}' "
            "ORDER BY offline_user_data_job.id DESC LIMIT 1"
        )
        return rows[0].offline_user_data_job if rows else None

    def _consent(self, key: str) -> str:
        value = str(self.credentials.get(key) or "").strip().upper()
        return value if value in ("GRANTED", "DENIED") else "UNSPECIFIED"


# Errors (the job operations and the reading of Google's error codes are in google_ads_wire) ----------------------
def _failure_from_call(call) -> GoogleAdsFailure | None:
    """The GoogleAdsFailure in a gRPC call's trailers (the library leaves RESOURCE_EXHAUSTED / INTERNAL unwrapped)."""
    try:
        metadata = call.trailing_metadata() if call is not None else None
    except Exception:  # not a grpc.Call
        return None
    for key, value in metadata or ():
        if key == FAILURE_KEY:
            try:
                return GoogleAdsFailure.deserialize(value)
            except Exception:
                return None
    return None


def _digits(value) -> str:
    return re.sub(r"\D", "", str(value or ""))
