"""A fake of Google's OAuth 2.0 token endpoint (https://oauth2.googleapis.com/token), refresh-token grant only.

It answers what google-auth's ``Credentials.refresh`` sends: an urlencoded POST with ``grant_type=refresh_token``,
``refresh_token``, ``client_id`` and ``client_secret``; and what a service account's ``Credentials.refresh`` sends:
``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` with an RS256-signed ``assertion`` (iss = the service
account's email, aud = the token URL), checked against the public key registered with ``register_service_account``
(unknown account or bad signature: ``invalid_grant``, as Google answers). Success is Google's JSON
``{"access_token", "expires_in", "scope", "token_type": "Bearer"}``; failures are Google's
``{"error", "error_description"}`` (``invalid_grant`` for an unknown, expired or revoked refresh token,
``invalid_client`` for a wrong client id / secret).

Access tokens are deterministic (``access_token_for(refresh_token)``) so the Google Ads gRPC fake, which may
run in another process (demo mode), can recognise the tokens this fake hands out without sharing state.
Mounted under ``/google-oauth`` on the shared loopback server: the token URL is ``{base}/google-oauth/token``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from sandbox.base import FakePlatform, FakeRequest, FakeResponse
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN

SCOPE = "https://www.googleapis.com/auth/adwords"
EXPIRES_IN = 3599
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def access_token_for(refresh_token: str) -> str:
    """The access token the fake issues for a refresh token (stable across processes)."""
    return "ya29.fake-" + hashlib.sha256(f"fake-google-oauth:{refresh_token}".encode()).hexdigest()[:40]


DEMO_ACCESS_TOKEN = access_token_for(DEMO_CREDENTIALS["google_ads"]["refresh_token"])


class FakeGoogleOAuth(FakePlatform):
    prefix = "/google-oauth"

    def __init__(self):
        super().__init__()
        # refresh token -> (client id, client secret) it was issued to
        self.grants: dict[str, tuple[str, str]] = {
            DEMO_CREDENTIALS[code]["refresh_token"]: (DEMO_CREDENTIALS[code]["client_id"],
                                                      DEMO_CREDENTIALS[code]["client_secret"])
            for code in ("google_ads", "google_dm")
        }
        self.service_accounts: dict[str, object] = {}  # client_email -> public key
        self.revoked: set[str] = {EXPIRED_TOKEN}
        self.token_requests = 0
        self.issued: list[str] = []

    def grant(self, refresh_token: str, client_id: str, client_secret: str) -> str:
        """Register another refresh token; returns the access token it will be exchanged for."""
        with self.lock:
            self.grants[refresh_token] = (client_id, client_secret)
        return access_token_for(refresh_token)

    def register_service_account(self, client_email: str, public_key_pem: bytes) -> str:
        """Accept JWT assertions signed by this key; returns the access token the account will get."""
        with self.lock:
            self.service_accounts[client_email] = serialization.load_pem_public_key(public_key_pem)
        return access_token_for(f"service-account:{client_email}")

    def revoke(self, refresh_token: str) -> None:
        with self.lock:
            self.revoked.add(refresh_token)

    @staticmethod
    def _error(status: int, error: str, description: str) -> FakeResponse:
        return FakeResponse(status, {"error": error, "error_description": description})

    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.path != "/token":
            return FakeResponse(404, {"error": "not_found"})
        if request.method != "POST":
            return self._error(405, "invalid_request", "Only POST is supported.")
        self.token_requests += 1
        form = request.form() if "x-www-form-urlencoded" in request.headers.get("content-type", "") else {}
        grant_type = form.get("grant_type", "")
        if grant_type == JWT_BEARER:
            return self._jwt_grant(form.get("assertion", ""), request)
        if grant_type != "refresh_token":
            return self._error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        refresh_token = form.get("refresh_token", "")
        if not refresh_token:
            return self._error(400, "invalid_request", "Missing required parameter: refresh_token")
        client = (form.get("client_id", ""), form.get("client_secret", ""))
        known = self.grants.get(refresh_token)
        if refresh_token in self.revoked or known is None:
            return self._error(400, "invalid_grant", "Token has been expired or revoked.")
        if client != known:
            return self._error(401, "invalid_client", "Unauthorized")
        token = access_token_for(refresh_token)
        self.issued.append(token)
        # Google grants the scopes the refresh asks for (within the consent given): echo them.
        return FakeResponse(200, {"access_token": token, "expires_in": EXPIRES_IN,
                                  "scope": form.get("scope") or SCOPE, "token_type": "Bearer"})

    def _jwt_grant(self, assertion: str, request: FakeRequest) -> FakeResponse:
        try:
            header_b64, payload_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64url(header_b64))
            payload = json.loads(_b64url(payload_b64))
            signature = _b64url(signature_b64)
        except (ValueError, TypeError):
            return self._error(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token and in a "
                               "reasonable timeframe.")
        key = self.service_accounts.get(payload.get("iss", ""))
        if header.get("alg") != "RS256" or key is None:
            return self._error(400, "invalid_grant", "Invalid JWT Signature.")
        try:
            key.verify(signature, f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return self._error(400, "invalid_grant", "Invalid JWT Signature.")
        if not payload.get("aud") or payload.get("exp", 0) < time.time():
            return self._error(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token and in a "
                               "reasonable timeframe.")
        token = access_token_for(f"service-account:{payload['iss']}")
        self.issued.append(token)
        return FakeResponse(200, {"access_token": token, "expires_in": EXPIRES_IN, "token_type": "Bearer"})


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
