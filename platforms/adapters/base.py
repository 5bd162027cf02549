"""The one small interface every platform adapter implements, and the description of a platform.

A platform is described once, by its adapter class (one module per platform under platforms/adapters/): its code,
name, docs link, whether it is a partner integration, its credential form and "where to find these" steps, the
match keys it takes and how (its row of the match-key table and its normalization choices), where its API is (an
environment variable, the real endpoint, the sandbox's), the credentials the sandbox accepts, its API version and
capabilities. The registry (platforms/adapters/registry.py) lists the classes from ``settings.PLATFORM_ADAPTERS``;
Platform rows follow it. Nothing else in the product names a platform.

An adapter is built from a connection's credentials (identifiers and secrets together) and
talks to one platform account. It receives members already normalized and hashed, as a
list of dicts keyed by match key (see platforms.matchkeys); it never sees raw PII. It is a context manager:
``close()`` releases what it holds open (an HTTP session, a gRPC channel).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from django import forms
from django.conf import settings

from platforms.errors import PermanentError

# One member as the adapter receives it: match key -> the exact string to send.
PreparedMember = Mapping[str, str]


class Operation:
    CREATE = "create"
    ADD = "add"
    REMOVE = "remove"
    REPLACE = "replace"
    DELETE = "delete"
    STATUS = "status"
    # Reports on requests after the fact (``BatchResult.request_ids`` -> ``request_status``).
    REQUEST_STATUS = "request_status"


@dataclass(frozen=True)
class RateLimit:
    """A budget of ``requests`` per ``per_seconds`` for one platform account."""

    requests: int
    per_seconds: float


@dataclass(frozen=True)
class Capabilities:
    batch_size: int
    operations: frozenset[str]
    rate_limit: RateLimit
    # Minimum members a platform needs before it will report or serve an audience.
    min_audience_size: int | None = None


@dataclass(frozen=True)
class UploadSession:
    """Ties the batches of one upload together (Meta's session; others may ignore it).

    ``session_id`` is stable for a run and kind (add / remove), so a resent batch carries
    the same session and sequence number as the first attempt.
    """

    session_id: int
    batch_seq: int  # from 1
    last_batch: bool
    estimated_total: int


@dataclass(frozen=True)
class BatchResult:
    """What the platform said about one batch."""

    received: int
    invalid: int = 0
    # Per-record problems the platform reported, safe to show (no PII).
    messages: tuple[str, ...] = ()
    # The platform's ids for the requests that carried this batch, where it reports results later
    # (Google's Data Manager: pass each to the adapter's request_status for records and errors by reason).
    request_ids: tuple[str, ...] = ()


class RequestReport(Protocol):
    """A platform's report on a request it processed later (Google's RequestDiagnostics)."""

    @property
    def done(self) -> bool: ...  # the platform has finished with the request

    @property
    def rejected(self) -> int: ...  # records it rejected

    def messages(self) -> tuple[str, ...]: ...  # one line per destination, safe to show (no values)


@dataclass(frozen=True)
class AudienceStatus:
    """Size and match figures as the platform reports them; None where it reports nothing."""

    size: int | None = None
    size_lower: int | None = None
    size_upper: int | None = None
    matched: int | None = None
    match_rate: float | None = None  # 0..1
    state: str = ""
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ValidationResult:
    """A working connection: a human description of the account we reached."""

    account_name: str
    details: dict = field(default_factory=dict)


class CredentialsForm(forms.Form):
    """Base of each platform's credential form.

    ``secret_fields`` are stored encrypted and never sent back to the browser: when editing,
    a blank secret keeps its stored value. Every other field is a non-secret identifier.
    ``help_steps`` are the "where to find these" instructions shown beside the form.
    """

    secret_fields: ClassVar[tuple[str, ...]] = ()
    help_steps: ClassVar[tuple[str, ...]] = ()

    label = forms.CharField(max_length=100, help_text="Your name for this account.")

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = editing
        for name in self.secret_fields:
            widget = self.fields[name].widget
            widget.attrs.update({"autocomplete": "off", "data-secret": "true", "spellcheck": "false"})
            if editing:
                self.fields[name].required = False
                self.fields[name].help_text = "Leave blank to keep the stored value."

    def split(self) -> tuple[str, dict, dict]:
        """(label, config, secrets) from cleaned data; blank secrets are left out."""
        data = dict(self.cleaned_data)
        label = data.pop("label")
        secrets = {name: data.pop(name) for name in self.secret_fields if name in data}
        secrets = {name: value for name, value in secrets.items() if value}
        return label, data, secrets


class SecretInput(forms.PasswordInput):
    """Masked input; the template adds a show/hide toggle. Never renders a stored value."""

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, render_value=False)


@dataclass(frozen=True)
class ApiVersion:
    """The platform API version an adapter speaks, and when the platform stops serving it (where it says).

    ``sunset`` may be given as an ISO date string. ``estimated`` marks a date we derived from the platform's
    published policy (e.g. "each version is served about a year") rather than one it published for this version.
    """

    version: str
    sunset: datetime.date | None = None
    source: str = ""  # the page that gives the sunset date (or the policy an estimate follows)
    estimated: bool = False

    def __post_init__(self):
        if isinstance(self.sunset, str):
            object.__setattr__(self, "sunset", datetime.date.fromisoformat(self.sunset))


# Token lifetimes and sign-in with the platform (OAuth) ------------------------------------------------------
@dataclass(frozen=True)
class TokenExpiry:
    """When a connection's credentials stop working unless renewed, as the platform reports it.

    ``expires_at`` None: the platform reports no end (a system-user token; a refresh token that lasts until it is
    revoked). ``what`` names what lapses ("access token", "data access", "refresh token"), in the page's words.
    ``renewable``: revalidation renews it without the person (a refresh token, Meta's long-lived token exchange).
    ``source`` says where the date comes from ("debug_token", "token introspection", "token response").
    """

    expires_at: datetime.datetime | None
    what: str = "access token"
    renewable: bool = False
    source: str = ""


@dataclass(frozen=True)
class TokenRenewal:
    """A refresh that worked: the secrets to store (only those that changed) and the new lifetime."""

    secrets: dict[str, str]
    expiry: TokenExpiry | None
    message: str


@dataclass(frozen=True)
class OAuthApp:
    """How a platform's OAuth sign-in works: facts from its docs, declared by its adapter (quoted in its module).

    The operator registers one app per platform and gives its id and secret in the environment
    (``client_id_setting`` / ``client_secret_setting``); ``client_fields`` are the connection's credential fields
    that carry them (Meta's app_id / app_secret, TikTok's app_id / app_secret, LinkedIn's and Google's client_id /
    client_secret). ``sandbox_authorize_path`` is the consent screen of the sandbox, under FAKE_PLATFORMS_URL.
    """

    authorize_url: str
    sandbox_authorize_path: str
    scopes: tuple[str, ...]
    client_id_setting: str
    client_secret_setting: str
    # Scopes without which a connection cannot work (a person may untick some on the consent screen).
    required_scopes: tuple[str, ...] = ()
    pkce: bool = False
    scope_separator: str = " "
    extra_params: Mapping[str, str] = field(default_factory=dict)
    # The query parameter that carries the code back to us (TikTok: auth_code).
    code_param: str = "code"
    client_fields: tuple[str, str] = ("client_id", "client_secret")


@dataclass(frozen=True)
class OAuthGrant:
    """What a platform's token endpoint granted: the secrets to store, the scopes, when the access token lapses."""

    secrets: dict[str, str]
    scopes: frozenset[str] = frozenset()
    expiry: TokenExpiry | None = None
    # Non-secret facts from the answer the account list may use (TikTok's advertiser ids).
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OAuthAccount:
    """An ad account the signed-in person may manage, to pick from."""

    id: str
    name: str
    detail: str = ""


class PlatformAdapter:
    """Base class: a platform's description (class attributes) and the interface (methods)."""

    code: ClassVar[str]
    name: ClassVar[str]
    # The platform's audience docs, or our partner contract for a partner integration.
    docs_url: ClassVar[str] = ""
    # No public audience API: integrated through a partner contract of our own (a Markdown file, relative to the
    # project, shown at /platforms/<code>/partner-contract/).
    partner: ClassVar[bool] = False
    partner_contract: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities]
    credentials_form: ClassVar[type[CredentialsForm]]
    api_version: ClassVar[ApiVersion | None] = None
    # Where the API is: ``settings.PLATFORM_ENDPOINTS[code]`` (tests), else the environment variable
    # ``endpoint_setting``, else the sandbox's address in demo mode, else ``endpoint`` (the real API). A
    # ``sandbox_endpoint`` starting with "/" is a path under FAKE_PLATFORMS_URL; otherwise a host:port. An adapter
    # whose endpoint is the connection's own (a partner's) leaves them empty.
    endpoint_setting: ClassVar[str] = ""
    endpoint: ClassVar[str] = ""
    sandbox_endpoint: ClassVar[str] = ""
    # The credentials the sandbox accepts for this platform (demo mode offers them on the connect form); the label
    # too. Not secrets: they are in the repository.
    sandbox_credentials: ClassVar[Mapping[str, str]] = {}
    # What the platform takes, and how (platforms.matchkeys): output key -> (stored keys, the first present wins;
    # encoding). Only these keys are sent, in this order.
    match_keys: ClassVar[Mapping[str, tuple[tuple[str, ...], str]]] = {}
    # Output keys that identify a person on their own. A removal carries only these, and only the values no
    # current member of the audience holds (the platform removes whoever matches any identifier sent).
    identifier_keys: ClassVar[tuple[str, ...]] = ()
    # Output keys that identify a person together when none of ``identifier_keys`` is present (a name and an
    # address); a removal sends them only as a whole, and only when no current member holds the same set.
    composite_identifier: ClassVar[tuple[str, ...]] = ()
    # Account identifier (a config key) used to scope the shared rate limit.
    account_field: ClassVar[str] = ""
    # Sign-in with the platform, when it has one (and the operator configured an app): see OAuthApp.
    oauth: ClassVar[OAuthApp | None] = None

    def __init__(self, credentials: Mapping[str, object]):
        self.credentials = dict(credentials)

    def __repr__(self):  # never show credentials
        return f"<{type(self).__name__} account={self.account_id!r}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Release what the adapter holds open (it opens it again if used afterwards)."""

    @classmethod
    def endpoint_url(cls) -> str:
        """Where this platform's API is, right now (see ``endpoint_setting``)."""
        override = (getattr(settings, "PLATFORM_ENDPOINTS", None) or {}).get(cls.code)
        if override:
            return override
        if cls.endpoint_setting and os.environ.get(cls.endpoint_setting):
            return os.environ[cls.endpoint_setting]
        if settings.DEMO_MODE and cls.sandbox_endpoint:
            if cls.sandbox_endpoint.startswith("/"):
                return settings.FAKE_PLATFORMS_URL.rstrip("/") + cls.sandbox_endpoint
            return cls.sandbox_endpoint
        return cls.endpoint

    @property
    def base_url(self) -> str:
        """The platform's API root (tests, benchmarks and the demo point it at the sandbox)."""
        return self.endpoint_url().rstrip("/")

    @classmethod
    def sandbox_values(cls) -> dict[str, str]:
        """What the connect form offers in demo mode: the credentials the sandbox accepts."""
        return dict(cls.sandbox_credentials)

    def check_batch(self, batch: Sequence) -> None:
        """The one error for a batch larger than the platform takes in one request."""
        limit = self.capabilities.batch_size
        if len(batch) > limit:
            raise PermanentError(f"{self.name} takes at most {limit:,} people per request; got {len(batch):,}.")

    @property
    def account_id(self) -> str:
        return str(self.credentials.get(self.account_field, "")) if self.account_field else ""

    # The interface --------------------------------------------------------------------
    def validate_credentials(self) -> ValidationResult:
        raise NotImplementedError

    def create_audience(self, name: str, description: str = "") -> str:
        """Create an empty audience; return the platform's id for it."""
        raise NotImplementedError

    def add_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        raise NotImplementedError

    def remove_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        raise NotImplementedError

    def replace_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession
    ) -> BatchResult:
        """Only where ``Operation.REPLACE`` is in the capabilities: the platform's own replace session."""
        raise NotImplementedError(f"{self.name} has no replace operation")

    def end_upload(self, audience_id: str) -> None:
        """The run stopped sending (done, cancelled or failed): hand over whatever the platform still holds back.

        Every batch the engine checkpointed as sent must reach the audience, even when the run never gets to its
        last batch. Most platforms apply each batch as it arrives (nothing to do); Google Ads applies a job only
        once it is run.
        """

    def status(self, audience_id: str) -> AudienceStatus:
        raise NotImplementedError

    def delete_audience(self, audience_id: str) -> None:
        raise NotImplementedError

    def request_status(self, request_id: str) -> RequestReport:
        """The platform's report on one request it answered with ``request_id`` (Operation.REQUEST_STATUS)."""
        raise NotImplementedError

    # Token lifetimes (where the platform reports them) ----------------------------------
    def token_expiry(self) -> TokenExpiry | None:
        """When these credentials stop working, as the platform reports it; None when it reports nothing."""
        return None

    def renew_credentials(self) -> TokenRenewal | None:
        """Refresh what can be refreshed without the person (a refresh token, a token exchange); None when there
        is nothing to renew. Raises our typed errors (AuthError: the grant was revoked)."""
        return None

    # Sign-in with the platform (OAuth; see platforms/adapters/oauth.py) ---------------------------
    @classmethod
    def oauth_client(cls) -> tuple[str, str] | None:
        """The operator's OAuth app for this platform, (client id, secret): ``settings.OAUTH_CLIENTS[code]``
        (tests), else the environment, else in the sandbox the app the fake knows; None when not configured."""
        if cls.oauth is None:
            return None
        configured = (getattr(settings, "OAUTH_CLIENTS", None) or {}).get(cls.code)
        if configured:
            return tuple(configured)
        client_id = os.environ.get(cls.oauth.client_id_setting, "")
        client_secret = os.environ.get(cls.oauth.client_secret_setting, "")
        if client_id and client_secret:
            return client_id, client_secret
        if oauth_sandbox():
            id_field, secret_field = cls.oauth.client_fields
            values = cls.sandbox_values()
            if values.get(id_field) and values.get(secret_field):
                return values[id_field], values[secret_field]
        return None

    @classmethod
    def oauth_authorize_endpoint(cls) -> str:
        """The consent screen: the platform's, or the sandbox's (demo mode and tests)."""
        if oauth_sandbox():
            return settings.FAKE_PLATFORMS_URL.rstrip("/") + cls.oauth.sandbox_authorize_path
        return cls.oauth.authorize_url

    @classmethod
    def oauth_authorization_url(cls, *, client: tuple[str, str], redirect_uri: str, state: str,
                                code_verifier: str | None) -> str:
        """The consent screen's URL for one sign-in (standard OAuth 2.0 parameters, built by Authlib)."""
        from platforms.adapters import oauth as oauth_flow

        return oauth_flow.authorization_url(endpoint=cls.oauth_authorize_endpoint(), app=cls.oauth, client=client,
                                            redirect_uri=redirect_uri, state=state, code_verifier=code_verifier)

    @classmethod
    def oauth_exchange(cls, *, code: str, redirect_uri: str, code_verifier: str | None,
                       client: tuple[str, str]) -> OAuthGrant:
        """The code from the consent screen exchanged for tokens (each platform's token endpoint)."""
        raise NotImplementedError

    @classmethod
    def oauth_accounts(cls, *, grant: OAuthGrant, client: tuple[str, str]) -> list[OAuthAccount]:
        """The ad accounts the signed-in person may manage."""
        raise NotImplementedError

    @classmethod
    def oauth_credentials(cls, *, grant: OAuthGrant, client: tuple[str, str], account_id: str) -> dict[str, str]:
        """The connection's credential fields for the chosen account (the form's names)."""
        id_field, secret_field = cls.oauth.client_fields
        return {id_field: client[0], secret_field: client[1], cls.account_field: account_id, **grant.secrets}


def oauth_sandbox() -> bool:
    """OAuth goes to the sandbox's consent screens and token endpoints (demo mode; tests that run the fakes).
    Never in production (the setting is forced off there)."""
    return bool(settings.DEMO_MODE or getattr(settings, "OAUTH_USE_SANDBOX", False))
