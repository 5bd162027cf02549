"""Netflix, through Activation Manager's own partner contract (docs/partners/netflix.md).

Netflix publishes no custom-audience API; advertisers reach Netflix ads through clean rooms and partners.
This adapter speaks the documented partner contract against the connection's own base URL: JSON bodies
of SHA-256 hex identifiers, every request signed with HMAC-SHA256 over method, path, timestamp and body
hash, keyed by the API secret, with the key id in a header. Keep this module and the contract document in
step: the document is what a partner implements.

The base URL is typed in by a user, so every request goes through ``activation_manager.egress`` (public
https addresses only, the checked address pinned, no redirects: docs/security.md). A partner's error body is
read only in the contract's documented shape (``{"error": {"code", "message"}}``); anything else is reported
by its status line, so an endpoint's page never reaches a message.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import requests
from django import forms
from django.conf import settings

from activation_manager import egress
from platforms.adapters.base import (
    AudienceStatus,
    BatchResult,
    Capabilities,
    CredentialsForm,
    Operation,
    PreparedMember,
    RateLimit,
    SecretInput,
    UploadSession,
    ValidationResult,
)
from platforms.adapters.http import HttpAdapter, path_of, raise_for_status
from platforms.errors import AuthError, PermanentError, TransientError
from platforms.matchkeys import HEX, SHA

# Our match key -> the contract's schema column, in the order columns are sent.
SCHEMA: tuple[tuple[str, str], ...] = (
    ("email", "email_sha256"),
    ("phone", "phone_sha256"),
    ("maid", "maid_sha256"),
)
BATCH_SIZE = 10_000
MAX_NAME = 200
MAX_DESCRIPTION = 1_000
AUTH_HINTS = {
    "stale_timestamp": "This server's clock differs from the partner's by more than 300 s: check NTP.",
    "invalid_signature": "Check the API secret.",
    "unknown_key": "Check the API key.",
    "key_revoked": "Ask the partner for a new API key and secret.",
}


def canonical_string(method: str, path: str, timestamp: str, body: bytes) -> str:
    """The string signed for one request (see "Request signing" in docs/partners/netflix.md)."""
    return "\n".join([method.upper(), path, timestamp, hashlib.sha256(body).hexdigest()])


def sign(secret: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    message = canonical_string(method, path, timestamp, body).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()



class NetflixCredentialsForm(CredentialsForm):
    secret_fields = ("api_key", "api_secret")
    help_steps = (
        "Netflix has no public audience API: this is a partner integration. Your Netflix ads partner gives you "
        "a partner id, an API key (sent with every request) and an API secret (signs every request).",
        "The endpoint base URL is the HTTPS address of the partner's audience endpoint.",
        "See the partner contract for what is sent and how requests are signed.",
    )

    partner_id = forms.CharField(label="Partner ID", max_length=64)
    api_key = forms.CharField(label="API key", max_length=256, widget=SecretInput())
    api_secret = forms.CharField(label="API secret", max_length=256, widget=SecretInput())
    base_url = forms.URLField(label="Endpoint base URL", max_length=300, assume_scheme="https")

    def clean_base_url(self):
        from activation_manager import egress

        try:  # https only, resolved now to public addresses only (the same guard runs on every request)
            return egress.check_url(self.cleaned_data["base_url"]).rstrip("/")
        except egress.EgressRefused as exc:
            raise forms.ValidationError(exc.message) from None


class NetflixAdapter(HttpAdapter):
    code = "netflix"
    name = "Netflix (partner)"
    docs_url = "/platforms/netflix/partner-contract/"
    partner_contract = "docs/partners/netflix.md"  # rendered at docs_url
    partner = True  # no public audience API: our own partner contract (docs/partners/netflix.md)
    sandbox_credentials = {
        "label": "Demo partner endpoint",
        "partner_id": "demo-partner",
        "api_key": "demo-netflix-key-id",
        "api_secret": "demo-netflix-signing-secret",
    }
    credentials_form = NetflixCredentialsForm
    account_field = "partner_id"
    match_keys = {
        "email": (("e",), HEX),
        "phone": (("p",), HEX),
        "maid": (("m",), SHA),
    }
    identifier_keys = ("email", "phone", "maid")
    capabilities = Capabilities(
        batch_size=BATCH_SIZE,
        operations=frozenset({Operation.CREATE, Operation.ADD, Operation.REMOVE, Operation.STATUS, Operation.DELETE}),
        # The contract allows 600 requests a minute per key; we use half of it.
        rate_limit=RateLimit(requests=300, per_seconds=60),
    )
    # Unix seconds; tests replace it to sign with a skewed clock.
    clock = staticmethod(time.time)

    @classmethod
    def sandbox_values(cls) -> dict[str, str]:
        # The partner endpoint is the connection's own: in demo mode, the sandbox's.
        return {**cls.sandbox_credentials, "base_url": f"{settings.FAKE_PLATFORMS_URL.rstrip('/')}/netflix/v1"}

    # Plumbing ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return str(self.credentials.get("base_url", "")).strip().rstrip("/")

    @property
    def partner_id(self) -> str:
        return str(self.credentials.get("partner_id", "")).strip()

    def new_session(self) -> requests.Session:
        # The endpoint is the user's own: through the one guarded way out (activation_manager/egress.py).
        return egress.session({"Accept": "application/json"})

    def sign(self, method: str, url: str, body: bytes) -> dict[str, str]:
        """The contract's signing headers: key id, timestamp, HMAC of method, path, timestamp and body."""
        timestamp = str(int(self.clock()))
        parts = urlsplit(url)
        signed_path = parts.path + (f"?{parts.query}" if parts.query else "")
        return {
            "X-Partner-Key-Id": str(self.credentials.get("api_key", "")),
            "X-Partner-Timestamp": timestamp,
            "X-Partner-Signature": sign(str(self.credentials.get("api_secret", "")), method, signed_path, timestamp,
                                        body),
        }

    def check(self, response: requests.Response) -> None:
        if response.status_code >= 400:
            code, message = _error(response)
            if code:
                message = f"{message} ({code})"
            raise_for_status(response, platform=self.name, message=message, auth_hint=AUTH_HINTS.get(code, ""))

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        if not self.base_url.startswith(("https://", "http://")):
            raise PermanentError(f"{self.name}: the connection has no valid endpoint base URL.")
        return super().request(method, path, **kwargs)

    def decode(self, response: requests.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            raise TransientError(f"{self.name}: the answer was not JSON (HTTP {response.status_code}).") from None
        if not isinstance(body, dict):
            raise TransientError(f"{self.name}: the answer was not a JSON object.")
        return body

    @staticmethod
    def _segment_path(audience_id: str, suffix: str = "") -> str:
        return path_of("segments", audience_id) + suffix

    # The interface ----------------------------------------------------------------------
    def validate_credentials(self) -> ValidationResult:
        partner = self.call("GET", path_of("partners", self.partner_id))
        if partner.get("status") != "active":
            state = partner.get("status") or "not active"
            raise AuthError(f"{self.name}: the partner account {self.partner_id} is {state}.")
        return ValidationResult(
            account_name=str(partner.get("name") or self.partner_id),
            details={
                "partner_id": str(partner.get("id", self.partner_id)),
                "endpoint": urlsplit(self.base_url).netloc,
                "partner_integration": True,
            },
        )

    def create_audience(self, name: str, description: str = "") -> str:
        payload = {"name": name[:MAX_NAME], "description": (description or "")[:MAX_DESCRIPTION]}
        segment = self.call("POST", "/segments", json=payload)
        if not segment.get("id"):
            raise PermanentError(f"{self.name}: the segment was not created (no id in the answer).")
        return str(segment["id"])

    def add_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        return self._members(audience_id, batch, "add")

    def remove_members(
        self, audience_id: str, batch: Sequence[PreparedMember], *, session: UploadSession | None = None
    ) -> BatchResult:
        return self._members(audience_id, batch, "remove")

    def status(self, audience_id: str) -> AudienceStatus:
        segment = self.call("GET", self._segment_path(audience_id))
        uploaded = _count(segment.get("uploaded_count"))
        matched = _count(segment.get("matched_count"))
        return AudienceStatus(
            size=uploaded,
            matched=matched,
            match_rate=(matched / uploaded) if uploaded and matched is not None else None,
            state=str(segment.get("status") or ""),
            raw=segment,
        )

    def delete_audience(self, audience_id: str) -> None:
        try:
            self.request("DELETE", self._segment_path(audience_id))
        except PermanentError as exc:
            if exc.code != 404:  # already deleted: the contract answers 404 to a second delete
                raise

    # Members ----------------------------------------------------------------------------
    def _members(self, audience_id: str, batch: Sequence[PreparedMember], operation: str) -> BatchResult:
        if not batch:
            return BatchResult(received=0)
        self.check_batch(batch)
        columns = [(key, column) for key, column in SCHEMA if any(member.get(key) for member in batch)]
        if not columns:
            return BatchResult(received=len(batch), invalid=len(batch),
                               messages=("No member had an email, phone or mobile advertising id.",))
        payload = {
            "schema": [column for _, column in columns],
            "members": [[str(member.get(key) or "") for key, _ in columns] for member in batch],
        }
        answer = self.call("POST", self._segment_path(audience_id, f"/members:{operation}"), json=payload)
        invalid = _count(answer.get("invalid")) or 0
        messages = tuple(
            f"row {error.get('index')}: {error.get('reason')}"
            for error in answer.get("errors") or [] if isinstance(error, dict)
        )
        received = _count(answer.get("received"))
        if received is None:  # not "everything arrived": an answer without the count says nothing arrived
            raise PermanentError(f"{self.name}: the partner's answer has no valid \"received\" count, so the "
                                 "batch is not counted as sent. Check the endpoint base URL.")
        if received != len(batch):
            raise PermanentError(f"{self.name}: the partner received {received} of the {len(batch)} rows sent.")
        return BatchResult(received=received, invalid=invalid, messages=messages)


MAX_ERROR_MESSAGE = 300


def _error(response: requests.Response) -> tuple[str, str]:
    """(code, message) from the contract's error shape; else ("", the status line). No other body text is used."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    code = code[:64] if isinstance(code, str) else ""
    if isinstance(message, str) and message.strip():
        return code, message.strip()[:MAX_ERROR_MESSAGE]
    return code, egress.status_line(response.status_code)


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

