"""Google Customer Match through the Data Manager API (``google.ads.datamanager.v1``; ``google-ads-datamanager``).

Why this adapter: the Google Ads API takes no new Customer Match users. Google Ads developer blog, 4 March 2026,
"Changes to Customer Match support in the Google Ads API": from 1 April 2026 the Google Ads API accepts no new
adopters of Customer Match, and tokens that had not uploaded between October 2025 and March 2026 get
CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE. The Data Manager API is Google's path; it needs no developer token (access
follows the OAuth client's Google Cloud project).

Flow:
- ``validate_credentials``: ``UserListService.ListUserLists`` on the operating account (page size 1): proves the
  token, the scope and the access to the account (through the manager when one is given) without writing anything.
- ``create_audience``: ``UserListService.CreateUserList`` under ``accountTypes/GOOGLE_ADS/accounts/{customer}``: an
  ingested user list with upload key type CONTACT_ID, first-party data, OPEN, membership 540 days. The audience id we
  hand back is the list's resource name ``accountTypes/GOOGLE_ADS/accounts/{customer}/userLists/{id}``.
- ``add_members`` / ``remove_members``: ``IngestionService.IngestAudienceMembers`` / ``RemoveAudienceMembers`` with one
  Destination (operating account = the Google Ads customer, login account = the manager when access goes through
  one, product_destination_id = the list id), HEX-encoded SHA-256 identifiers, the connection's consent (ingest
  only: removal takes none) and the Customer Match terms. Each successful request answers a ``request_id``; it is
  returned in ``BatchResult.request_ids`` and ``request_status(request_id)`` reads Google's diagnostics for it
  (records and identifiers per destination, match-rate range, error counts by reason). Google removes every member
  record that matches ANY identifier of a removal, so a removal sends a member's email and phone and its address
  (name + postal code, shared by many people) only when it has neither.
- ``status``: ``UserListService.GetUserList`` (sizes per network, match rate percentage, membership status).
- ``delete_audience``: ``UserListService.DeleteUserList`` (the API has it; the Google Ads API's remove equivalent).
- The ``login-account`` header names the manager for UserListService calls, as the client documents
  ("login-account: (Optional) The resource name of the account where the Google Account of the credentials is a
  user. If not set, defaults to the account of the request."). ``linked_account`` exists only for data partners
  ("LINKED_ACCOUNT_ONLY_ALLOWED_WITH_DATA_PARTNER_LOGIN_ACCOUNT"), so an advertiser's connection never sets it.

Google's pages relied on:
- Limits, https://developers.google.com/data-manager/api/devguides/limits : "IngestAudienceMembersRequest and
  RemoveAudienceMembersRequest: 10,000 AudienceMember resources in the audience_members list - 10 user identifiers
  in the UserData for an AudienceMember. - 10 Destination resources"; per Cloud project, IngestionService
  "100,000" requests a day and "300" a minute; "Requests that exceed the limits are rejected with the error
  RESOURCE_EXHAUSTED and HTTP status 429 Too Many Requests." The quota's name comes back "in the ErrorInfo standard
  details payload under metadata.quota_limit" (e.g. IngestionMutateRequestsPerMinutePerProject): we wait a minute
  for a per-minute quota and until the next midnight Pacific time for a per-day one (Google Cloud's daily reset;
  not stated on that page).
- Understand errors, https://developers.google.com/data-manager/api/devguides/concepts/understand-errors : "The
  Data Manager API uses a fast-fail model. If a request has structural errors or a record fails validation for a
  required field, the whole request fails and the API processes none of the data in that request." So the adapter
  checks every identifier before sending (a malformed hash would fail all 10,000), and when Google still names
  members in the BadRequest field violations (``audience_members[i]...``) it drops those, counts them invalid with
  Google's reason, and sends the rest once more.
- Diagnostics, https://developers.google.com/data-manager/api/devguides/diagnostics : "capture the response's
  request_id so you can use it to retrieve diagnostics"; "Wait for 30 minutes, then send a RetrieveRequestStatus
  request for each successful request_id", until each destination is "SUCCESS, PARTIAL_SUCCESS, or FAILURE".
- Formatting, https://developers.google.com/data-manager/api/devguides/concepts/formatting : emails lowercased, and
  for gmail.com / googlemail.com "Remove all periods (.) before the @ symbol" and "Remove the plus sign (+) from the
  local part and remove all characters that follow it"; phone "Use the E.164 format. Include the plus sign (+) and
  country code"; given_name / family_name lowercased, no prefixes (Mrs.) / suffixes (Jr.); "Don't hash region_code",
  "Don't hash postal_code"; US postal codes "5 digits or 5 digits followed by the 4-digit extension". The exact
  strings come from ``platforms.matchkeys.platform_values("google_dm", ...)`` (see docs/platforms.md for where
  Google's Formatter and its prose differ, and which we follow).
- EU user consent policy (consent, https://developers.google.com/data-manager/api/devguides/concepts/consent and
  Google's EU user consent policy): advertisers must pass end-user consent for users in the European Economic Area;
  ``Consent{ad_user_data, ad_personalization}`` applies to every member of a request. Nothing here defaults to
  GRANTED: the marketer states both per connection, and an ingest without a stated consent is refused locally.

Transport: like ``google_ads.py``, the adapter builds the client stack on one gRPC channel of its own (the
transport's ``create_channel`` with the Google credentials as call credentials) so that the only difference between
production and the loopback fake is the channel credentials: TLS, or gRPC local credentials when
``GRPC_PLAINTEXT_LOOPBACK`` (tests / demo; forced off in production). The OAuth token is refreshed
before each call (``GOOGLE_OAUTH_TOKEN_URL``; a service-account key's own ``token_uri`` is never used, so no
user-supplied URL is ever called) so a refused grant is an AuthError, not a gRPC failure.

Beside this module: ``google_datamanager_form.py`` (the credential form) and ``google_datamanager_wire.py`` (the
request members built as raw protobuf, Google's error details and request diagnostics read back); their public names
are importable from here as well.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence

import grpc
import proto
from django.conf import settings
from google.ads.datamanager_v1.services.ingestion_service import IngestionServiceClient
from google.ads.datamanager_v1.services.user_list_service import UserListServiceClient
from google.ads.datamanager_v1.types import consent as consent_types
from google.ads.datamanager_v1.types import destination as destination_types
from google.ads.datamanager_v1.types import ingestion_service as ingestion
from google.ads.datamanager_v1.types import terms_of_service as tos_types
from google.ads.datamanager_v1.types import user_list as user_list_types
from google.ads.datamanager_v1.types import user_list_service as uls
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import Request as AuthRequest
from google.oauth2 import credentials as oauth_credentials
from google.oauth2 import service_account
from google.protobuf import duration_pb2

from platforms.adapters import google_oauth
from platforms.adapters.base import (
    ApiVersion,
    AudienceStatus,
    BatchResult,
    Capabilities,
    OAuthGrant,
    Operation,
    PlatformAdapter,
    PreparedMember,
    RateLimit,
    UploadSession,
    ValidationResult,
)
from platforms.adapters.google_datamanager_form import GoogleDataManagerCredentialsForm

# Request building and answer reading live in google_datamanager_wire; their public names stay importable here.
from platforms.adapters.google_datamanager_wire import (
    BAD_HASH,  # noqa: F401
    NO_IDENTIFIER,  # noqa: F401
    DestinationDiagnostics,  # noqa: F401
    RequestDiagnostics,
    _destination_diagnostics,
    _details,
    _refresh_message,
    _rejection_messages,
    _removal_identifiers,
    _retry_after,
    build_members,
    member_identifiers,  # noqa: F401
    seconds_until_pacific_midnight,  # noqa: F401
)
from platforms.adapters.grpc_channel import channel_credentials
from platforms.errors import AuthError, PermanentError, PlatformError, RateLimited, TransientError
from platforms.matchkeys import HEX, RAW

CODE = "google_dm"
SCOPE = "https://www.googleapis.com/auth/datamanager"
MAX_MEMBERS_PER_REQUEST = 10_000
MEMBERSHIP_DAYS = 540  # Google's maximum (MEMBERSHIP_DURATION_TOO_LONG above it)
MIN_SERVING_SIZE = 100  # Google Ads help centre: 100 active matched users to serve (Display, Search, YouTube)
REQUESTS_PER_MINUTE = 300  # per Google Cloud project, IngestionService
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
ACCOUNT_TYPE = "GOOGLE_ADS"
LIST_NAME = re.compile(r"^accountTypes/GOOGLE_ADS/accounts/(\d{10})/userLists/(\d+)$")
MEMBER_FIELD = re.compile(r"^audience_members\[(\d+)\]")
TRANSIENT_STATUS = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.UNKNOWN,
}
CONSENT_VALUES = {"GRANTED": "CONSENT_GRANTED", "DENIED": "CONSENT_DENIED"}


class _TimedRequest(AuthRequest):
    """google-auth's HTTP request with our timeout (its default is 120 s)."""

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        return super().__call__(url, method=method, body=body, headers=headers,
                                timeout=timeout or settings.PLATFORM_HTTP_TIMEOUT, **kwargs)


# The adapter --------------------------------------------------------------------------------------------
class GoogleDataManagerAdapter(google_oauth.GoogleSignIn, PlatformAdapter):
    code = CODE
    name = "Google (Data Manager API)"
    api_version = ApiVersion("v1")  # no sunset published for the Data Manager API's v1
    endpoint_setting = "GOOGLE_DATAMANAGER_ENDPOINT"
    endpoint = "datamanager.googleapis.com:443"
    sandbox_endpoint = "127.0.0.1:8767"
    sandbox_credentials = {
        "label": "Demo customer (Data Manager)",
        "auth_method": "oauth",
        "client_id": "demo-datamanager-client.apps.googleusercontent.com",
        "client_secret": "demo-datamanager-client-secret",
        "refresh_token": "1//demo-datamanager-refresh-token",
        "service_account_key": "",
        "customer_id": "123-456-7890",
        "login_customer_id": "",
        "consent_ad_user_data": "GRANTED",
        "consent_ad_personalization": "GRANTED",
        "customer_match_terms": "on",
    }
    docs_url = "https://developers.google.com/data-manager/api/devguides/audiences/google-ads/customer-match"
    credentials_form = GoogleDataManagerCredentialsForm
    account_field = "customer_id"
    # Sign-in with Google (platforms/adapters/google_oauth.py).
    oauth = google_oauth.oauth_app(google_oauth.DATAMANAGER_SCOPE, google_oauth.ADWORDS_SCOPE,
                                  required=(google_oauth.DATAMANAGER_SCOPE,))
    # Google's Formatter's forms where they differ from the stored ones (docs/platforms.md).
    match_keys = {
        "email": (("eg", "e"), HEX),  # gmail / googlemail: no dots, no "+suffix"
        "phone": (("p",), HEX),  # E.164 with "+"
        "first_name": (("fng", "fn"), HEX),  # address.given_name
        "last_name": (("lng", "ln"), HEX),  # address.family_name
        "country": (("c",), RAW),  # address.region_code, uppercase, unhashed
        "postal_code": (("zg", "z"), RAW),  # address.postal_code, unhashed; US ZIP+4 when given
    }
    identifier_keys = ("email", "phone")
    composite_identifier = ("first_name", "last_name", "country", "postal_code")  # the address
    capabilities = Capabilities(
        batch_size=MAX_MEMBERS_PER_REQUEST,
        operations=frozenset({Operation.CREATE, Operation.ADD, Operation.REMOVE, Operation.STATUS, Operation.DELETE,
                              Operation.REQUEST_STATUS}),
        rate_limit=RateLimit(requests=REQUESTS_PER_MINUTE, per_seconds=60),
        min_audience_size=MIN_SERVING_SIZE,
    )

    def __init__(self, credentials: Mapping[str, object]):
        super().__init__(credentials)
        self._google_credentials = None
        self._channel: grpc.Channel | None = None
        self._ingestion: IngestionServiceClient | None = None
        self._user_lists: UserListServiceClient | None = None

    # Identity ----------------------------------------------------------------------------
    @property
    def customer_id(self) -> str:
        return re.sub(r"\D", "", str(self.credentials.get("customer_id") or ""))

    @property
    def login_customer_id(self) -> str:
        return re.sub(r"\D", "", str(self.credentials.get("login_customer_id") or ""))

    @property
    def account_id(self) -> str:
        """The shared rate limit's scope: Google counts quota per Cloud project, which the OAuth client (or the
        service account's project) identifies; falls back to the customer id."""
        if self._auth_method() == "service_account":
            project = (self._service_account_info() or {}).get("project_id")
            if project:
                return f"cloud-project:{project}"
        client_id = str(self.credentials.get("client_id") or "").strip()
        return f"oauth-client:{client_id}" if client_id else self.customer_id

    def _auth_method(self) -> str:
        method = str(self.credentials.get("auth_method") or "").strip()
        if method in ("oauth", "service_account"):
            return method
        return "service_account" if self.credentials.get("service_account_key") else "oauth"

    def _service_account_info(self) -> dict | None:
        raw = self.credentials.get("service_account_key")
        if not raw:
            return None
        try:
            info = json.loads(raw) if isinstance(raw, str) else dict(raw)
        except (TypeError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    @property
    def google_credentials(self):
        """google-auth credentials with the datamanager scope; tokens always come from GOOGLE_OAUTH_TOKEN_URL."""
        if self._google_credentials is None:
            if self._auth_method() == "service_account":
                info = self._service_account_info()
                if not info or info.get("type") != "service_account":
                    raise AuthError("The connection's service-account key is missing or is not a JSON key; paste the "
                                    "key again.")
                try:
                    self._google_credentials = service_account.Credentials.from_service_account_info(
                        {**info, "token_uri": settings.GOOGLE_OAUTH_TOKEN_URL}, scopes=[SCOPE])
                except (ValueError, KeyError):
                    raise AuthError("Google cannot use this service-account key (its private key does not load); "
                                    "create a new key and paste it again.") from None
            else:
                self._google_credentials = oauth_credentials.Credentials(
                    token=None,
                    refresh_token=str(self.credentials.get("refresh_token") or ""),
                    client_id=str(self.credentials.get("client_id") or ""),
                    client_secret=str(self.credentials.get("client_secret") or ""),
                    token_uri=settings.GOOGLE_OAUTH_TOKEN_URL,
                    scopes=[SCOPE],
                )
        return self._google_credentials

    # Plumbing ----------------------------------------------------------------------------
    def _clients(self) -> tuple[IngestionServiceClient, UserListServiceClient]:
        if self._channel is None:
            transport_class = IngestionServiceClient.get_transport_class("grpc")
            self._channel = transport_class.create_channel(
                host=self.endpoint_url(),
                credentials=self.google_credentials,
                scopes=[SCOPE],
                options=CHANNEL_OPTIONS,
                ssl_credentials=channel_credentials(),
            )
            self._ingestion = IngestionServiceClient(transport=transport_class(channel=self._channel))
            user_list_transport = UserListServiceClient.get_transport_class("grpc")
            self._user_lists = UserListServiceClient(transport=user_list_transport(channel=self._channel))
        return self._ingestion, self._user_lists

    def close(self) -> None:
        """Close the gRPC channel (the adapter opens a new one if used again)."""
        if self._channel is not None:
            self._channel.close()
        self._channel = self._ingestion = self._user_lists = None

    def _ensure_token(self) -> None:
        credentials = self.google_credentials
        if credentials.valid:
            return
        try:
            credentials.refresh(_TimedRequest())
        except auth_exceptions.RefreshError as exc:
            raise AuthError(_refresh_message(exc, self._auth_method())) from None
        except auth_exceptions.TransportError:
            raise TransientError(
                "Could not reach Google's OAuth token endpoint; the request will be retried.") from None

    def _rpc(self, service: str, method: str, request, *, metadata: Sequence[tuple[str, str]] = ()):
        self._ensure_token()
        ingestion_client, user_list_client = self._clients()
        client = ingestion_client if service == "ingestion" else user_list_client
        try:
            if not isinstance(request, proto.Message):  # raw protobuf built for speed: wrap it, no copy
                request = _WRAPPERS[type(request)].wrap(request)
            return getattr(client, method)(request=request, retry=None, timeout=settings.PLATFORM_HTTP_TIMEOUT,
                                           metadata=metadata)
        except api_exceptions.GoogleAPICallError as exc:
            raise self._translate(exc) from None
        except auth_exceptions.RefreshError as exc:  # the channel's own refresh (token expired mid-call)
            raise AuthError(_refresh_message(exc, self._auth_method())) from None

    def _login_metadata(self) -> tuple[tuple[str, str], ...]:
        if self.login_customer_id:
            return (("login-account", f"accountTypes/{ACCOUNT_TYPE}/accounts/{self.login_customer_id}"),)
        return ()

    def _translate(self, exc: api_exceptions.GoogleAPICallError) -> PlatformError:
        """Google's status (gRPC code, ErrorInfo reason and metadata, RequestInfo) as one of our typed errors."""
        status = exc.grpc_status_code
        status_name = status.name if isinstance(status, grpc.StatusCode) else str(exc.code or "")
        info, request_id, violations = _details(exc)
        reason = info.reason if info is not None else ""
        detail = f"Google Data Manager: {exc.message or status_name}" + (f" ({reason})" if reason else "")
        if violations:
            detail += ": " + "; ".join(dict.fromkeys(f"{v.field} {v.description}".strip() for v in violations[:5]))
        if request_id:
            detail += f" [request {request_id}]"
        code = reason or status_name or None
        error = self._typed(status, status_name, info, reason, detail, code, exc)
        error.violations = tuple(violations)  # read by _send to drop the members Google named
        return error

    def _typed(self, status, status_name, info, reason, detail, code, exc) -> PlatformError:
        if status == grpc.StatusCode.UNAUTHENTICATED:
            return AuthError(f"{detail} Sign in again (refresh token or service-account key) and update the "
                             "connection.", code=code)
        if status == grpc.StatusCode.PERMISSION_DENIED:
            through = f" through manager {self.login_customer_id}" if self.login_customer_id else ""
            return AuthError(f"{detail} Check that the signed-in user or service account can reach Google Ads "
                             f"customer {self.customer_id}{through}, and that the Cloud project has the Data Manager "
                             "API enabled.", code=code)
        if status == grpc.StatusCode.RESOURCE_EXHAUSTED:
            if info is None and "larger than max" in (exc.message or ""):
                # gRPC's own message-size limit shares the throttling status; waiting would not help.
                return PermanentError(f"{detail} The request is too large for Google.", code=status_name)
            quota = info.metadata.get("quota_limit", "") if info is not None else ""
            return RateLimited(detail, retry_after=_retry_after(exc, quota), code=quota or code)
        if status in TRANSIENT_STATUS:
            if not reason and not exc.message:
                detail = f"Could not reach Google ({status_name}); the request will be retried."
            return TransientError(detail, code=code)
        if reason == "TERMS_AND_CONDITIONS_NOT_SIGNED":
            return PermanentError(f"{detail} Accept the Customer Match terms in Google Ads (Tools → Shared library → "
                                  f"Audience manager) for customer {self.customer_id}.", code=code)
        return PermanentError(detail, code=code)

    # Audience ids ------------------------------------------------------------------------
    @property
    def _parent(self) -> str:
        return f"accountTypes/{ACCOUNT_TYPE}/accounts/{self.customer_id}"

    def _list_name(self, audience_id: str) -> str:
        value = str(audience_id).strip()
        match = LIST_NAME.match(value)
        if match:
            if match.group(1) != self.customer_id:
                raise PermanentError(f"User list {value} belongs to another customer than {self.customer_id}.")
            return value
        if value.isdigit():
            return f"{self._parent}/userLists/{value}"
        raise PermanentError(f"{value!r} is not a Google user list id.")

    def _destination(self, list_name: str):
        destination = destination_types.Destination.pb()(
            operating_account=destination_types.ProductAccount.pb()(account_type=ACCOUNT_TYPE,
                                                                   account_id=self.customer_id),
            product_destination_id=list_name.rsplit("/", 1)[1],
        )
        if self.login_customer_id:
            destination.login_account.account_type = ACCOUNT_TYPE
            destination.login_account.account_id = self.login_customer_id
        return destination

    @classmethod
    def oauth_credentials(cls, *, grant: OAuthGrant, client: tuple[str, str], account_id: str) -> dict[str, str]:
        return {**super().oauth_credentials(grant=grant, client=client, account_id=account_id), "auth_method": "oauth"}

    # The interface -----------------------------------------------------------------------
    def validate_credentials(self) -> ValidationResult:
        if not self.customer_id or len(self.customer_id) != 10:
            raise PermanentError("The connection has no valid 10-digit Google Ads customer id.")
        self._rpc("user_lists", "list_user_lists", uls.ListUserListsRequest(parent=self._parent, page_size=1),
                  metadata=self._login_metadata())
        cid = self.customer_id
        formatted = f"{cid[:3]}-{cid[3:6]}-{cid[6:]}"
        return ValidationResult(
            account_name=f"Google Ads {formatted}",
            details={
                "customer_id": formatted,
                "login_customer_id": self.login_customer_id,
                "auth_method": self._auth_method(),
                "consent_ad_user_data": self._consent_value("consent_ad_user_data") or "not stated",
                "consent_ad_personalization": self._consent_value("consent_ad_personalization") or "not stated",
            },
        )

    def create_audience(self, name: str, description: str = "") -> str:
        user_list = user_list_types.UserList(
            display_name=name,
            description=description or name,  # required by Google
            membership_status=user_list_types.UserList.MembershipStatus.OPEN,
            membership_duration=duration_pb2.Duration(seconds=MEMBERSHIP_DAYS * 86_400),
            ingested_user_list_info=user_list_types.IngestedUserListInfo(
                upload_key_types=[user_list_types.IngestedUserListInfo.UploadKeyType.CONTACT_ID],
                contact_id_info=user_list_types.ContactIdInfo(data_source_type="DATA_SOURCE_TYPE_FIRST_PARTY"),
            ),
        )
        created = self._rpc("user_lists", "create_user_list",
                            uls.CreateUserListRequest(parent=self._parent, user_list=user_list),
                            metadata=self._login_metadata())
        if not created.name:
            raise TransientError("Google created no user list; the request will be retried.")
        return created.name

    def add_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        consent = self._consent()  # before anything is sent: no consent stated, no upload
        return self._send("ingest", self._list_name(audience_id), batch, consent)

    def remove_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        # Google removes every record matching ANY identifier sent, and many people share a name and postal code:
        # a removal carries a member's address only when the member has no email or phone.
        return self._send("remove", self._list_name(audience_id), [_removal_identifiers(m) for m in batch], None)

    def status(self, audience_id: str) -> AudienceStatus:
        name = self._list_name(audience_id)
        user_list = self._rpc("user_lists", "get_user_list", uls.GetUserListRequest(name=name),
                              metadata=self._login_metadata())
        sizes = user_list.size_info
        size = max(sizes.display_network_members_count, sizes.search_network_members_count)
        info = user_list.ingested_user_list_info.contact_id_info
        rate = info.match_rate_percentage / 100 if info.match_rate_percentage else None
        membership = user_list.membership_status.name if "membership_status" in user_list else "UNSPECIFIED"
        raw = {
            "name": user_list.display_name,
            "membership_status": membership,
            "display_network_members_count": sizes.display_network_members_count,
            "search_network_members_count": sizes.search_network_members_count,
            "youtube_members_count": sizes.youtube_members_count,
            "gmail_members_count": sizes.gmail_members_count,
            "eligible_for_display": user_list.target_network_info.eligible_for_display,
            "eligible_for_search": user_list.target_network_info.eligible_for_search,
        }
        return AudienceStatus(size=size, matched=size, match_rate=rate, state=membership.lower(), raw=raw)

    def delete_audience(self, audience_id: str) -> None:
        self._rpc("user_lists", "delete_user_list", uls.DeleteUserListRequest(name=self._list_name(audience_id)),
                  metadata=self._login_metadata())

    def request_status(self, request_id: str) -> RequestDiagnostics:
        """Google's diagnostics for one ingest / remove request (``BatchResult.request_ids``): records per
        destination, match-rate range, and rejected records counted by reason. Google advises asking 30 minutes
        after the request, then again with backoff until every destination is done."""
        response = self._rpc("ingestion", "retrieve_request_status",
                             ingestion.RetrieveRequestStatusRequest(request_id=request_id))
        return RequestDiagnostics(request_id=request_id, destinations=tuple(
            _destination_diagnostics(status) for status in response.request_status_per_destination))

    # Sending -----------------------------------------------------------------------------
    def _consent(self):
        values = {key: self._consent_value(key) for key in ("consent_ad_user_data", "consent_ad_personalization")}
        missing = [key for key, value in values.items() if not value]
        if missing:
            raise PermanentError(
                "This Google connection states no consent for "
                + " and ".join(k.removeprefix("consent_").replace("_", " ") for k in missing)
                + ". Edit the connection and choose Granted or Denied: Google's EU user consent policy requires it, "
                "and nothing is assumed.", code="CONSENT_NOT_STATED")
        return consent_types.Consent.pb()(
            ad_user_data=CONSENT_VALUES[values["consent_ad_user_data"]],
            ad_personalization=CONSENT_VALUES[values["consent_ad_personalization"]],
        )

    def _consent_value(self, key: str) -> str:
        value = str(self.credentials.get(key) or "").strip().upper()
        return value if value in CONSENT_VALUES else ""

    def _send(self, kind: str, list_name: str, batch: Sequence[PreparedMember], consent) -> BatchResult:
        if not batch:
            return BatchResult(received=0)
        self.check_batch(batch)
        members, problems = build_members(batch)
        rejected: Counter = Counter(problems)
        if not members:
            return BatchResult(received=len(batch), invalid=sum(rejected.values()),
                               messages=_rejection_messages(rejected))
        request_ids: list[str] = []
        warnings: list[str] = []
        for attempt in range(2):
            request = self._request(kind, list_name, members, consent)
            try:
                response = self._rpc("ingestion", f"{kind}_audience_members", request)
            except PermanentError as exc:
                dropped = self._members_named(exc, len(members), attempt)
                if not dropped:
                    raise
                # Fast-fail: Google refused the whole request for these members; send the others once more.
                rejected.update(dropped.values())
                members = [m for i, m in enumerate(members) if i not in dropped]
                if not members:
                    break
                continue
            request_ids.append(response.request_id)
            for warning in getattr(response, "field_warnings", ()):
                warnings.append(f"Google warned: {warning.description or warning.reason.name} ({warning.field})")
            break
        return BatchResult(received=len(batch), invalid=sum(rejected.values()),
                           messages=_rejection_messages(rejected) + tuple(dict.fromkeys(warnings)),
                           request_ids=tuple(request_ids))

    def _request(self, kind: str, list_name: str, members: list, consent):
        destination = self._destination(list_name)
        if kind == "ingest":
            return ingestion.IngestAudienceMembersRequest.pb()(
                destinations=[destination], audience_members=members, consent=consent,
                terms_of_service=tos_types.TermsOfService.pb()(customer_match_terms_of_service_status=(
                    "ACCEPTED" if self.credentials.get("customer_match_terms")
                    else "TERMS_OF_SERVICE_STATUS_UNSPECIFIED")),
                encoding="HEX",
            )
        return ingestion.RemoveAudienceMembersRequest.pb()(destinations=[destination], audience_members=members,
                                                           encoding="HEX")

    def _members_named(self, exc: PermanentError, count: int, attempt: int) -> dict[int, str]:
        """{member index: Google's reason} when the refusal names members, on the first attempt only."""
        violations = getattr(exc, "violations", ())
        if attempt or not violations:
            return {}
        named = {}
        for violation in violations:
            match = MEMBER_FIELD.match(violation.field)
            if match is None:
                return {}  # something about the request itself: nothing to drop
            index = int(match.group(1))
            if index < count:
                named.setdefault(index, f"{violation.description or violation.reason} ({violation.reason})"
                                 if violation.reason else violation.description)
        return named


_WRAPPERS = {wrapper.pb(): wrapper for wrapper in (ingestion.IngestAudienceMembersRequest,
                                                    ingestion.RemoveAudienceMembersRequest)}


