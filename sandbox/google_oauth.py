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

Sign-in with Google: ``GET /auth`` is the consent screen (sandbox.oauth.ConsentScreen, every scope can be unticked as
with Google's granular consent), ``grant_type=authorization_code`` redeems its code (with the PKCE verifier when the
authorization carried a challenge, S256) for ``{access_token, expires_in, refresh_token, scope, token_type}`` with
only the scopes granted; the refresh token it issues is signed (``sandbox.oauth.signed``), and so are the access tokens
it mints for it (``OAUTH_ACCESS_PREFIX``), which the gRPC fakes of Google accept without sharing state with this one.
``GET /googleads/v26/customers:listAccessibleCustomers`` stands in for the Google Ads API's REST method of that name
(``{"resourceNames": [...]}``; the adwords scope is required, as Google's is).
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
from sandbox.oauth import ConsentScreen, signed, verify_signed

SCOPE = "https://www.googleapis.com/auth/adwords"
EXPIRES_IN = 3599
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
OAUTH_REFRESH_PREFIX = "1//sandbox-oauth-"
OAUTH_ACCESS_PREFIX = "ya29.sandbox-oauth-"
# The customers the sandbox's Google Ads accounts list (the gRPC fakes' demo customer and manager).
ACCESSIBLE_CUSTOMERS = ("1234567890", "9876543210")


def is_sandbox_access_token(token: str) -> bool:
    """An access token this fake minted for a sign-in's refresh token (the gRPC fakes accept these)."""
    return verify_signed(token, OAUTH_ACCESS_PREFIX)


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
        self.clients = {DEMO_CREDENTIALS[code]["client_id"]: DEMO_CREDENTIALS[code]["client_secret"]
                        for code in ("google_ads", "google_dm")}
        self.consent = ConsentScreen("Google", clients=lambda: self.clients)
        # refresh token -> scopes granted at the sign-in; access token -> scopes
        self.granted: dict[str, tuple[str, ...]] = {}
        self.access_scopes: dict[str, tuple[str, ...]] = {}

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
        if request.path == "/auth" and request.method == "GET":
            return self.consent.authorize(request)
        if request.path == "/googleads/v26/customers:listAccessibleCustomers" and request.method == "GET":
            return self._accessible_customers(request)
        if request.path != "/token":
            return FakeResponse(404, {"error": "not_found"})
        if request.method != "POST":
            return self._error(405, "invalid_request", "Only POST is supported.")
        self.token_requests += 1
        form = request.form() if "x-www-form-urlencoded" in request.headers.get("content-type", "") else {}
        grant_type = form.get("grant_type", "")
        if grant_type == JWT_BEARER:
            return self._jwt_grant(form.get("assertion", ""), request)
        if grant_type == "authorization_code":
            return self._code_grant(form)
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
        if refresh_token in self.granted:  # a sign-in's: a signed access token, within the scopes consented to
            token = signed(OAUTH_ACCESS_PREFIX)
            scopes = self.granted[refresh_token]
            self.access_scopes[token] = scopes
            self.issued.append(token)
            return FakeResponse(200, {"access_token": token, "expires_in": EXPIRES_IN, "scope": " ".join(scopes),
                                      "token_type": "Bearer"})
        token = access_token_for(refresh_token)
        self.issued.append(token)
        # Google grants the scopes the refresh asks for (within the consent given): echo them.
        return FakeResponse(200, {"access_token": token, "expires_in": EXPIRES_IN,
                                  "scope": form.get("scope") or SCOPE, "token_type": "Bearer"})

    def _code_grant(self, form: dict) -> FakeResponse:
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        granted = self.consent.redeem(form.get("code", ""), client_id=client_id, client_secret=client_secret,
                                      redirect_uri=form.get("redirect_uri", ""),
                                      code_verifier=form.get("code_verifier"))
        if granted == "invalid_client":
            return self._error(401, "invalid_client", "Unauthorized")
        if isinstance(granted, str):
            return self._error(400, "invalid_grant", "Malformed auth code.")
        refresh_token = signed(OAUTH_REFRESH_PREFIX)
        access_token = signed(OAUTH_ACCESS_PREFIX)
        with self.lock:
            self.grants[refresh_token] = (client_id, client_secret)
            self.granted[refresh_token] = granted.scopes
            self.access_scopes[access_token] = granted.scopes
        self.issued.append(access_token)
        return FakeResponse(200, {"access_token": access_token, "expires_in": EXPIRES_IN,
                                  "refresh_token": refresh_token, "scope": " ".join(granted.scopes),
                                  "token_type": "Bearer"})

    def _accessible_customers(self, request: FakeRequest) -> FakeResponse:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        scopes = self.access_scopes.get(token)
        if scopes is None:
            return FakeResponse(401, {"error": {"code": 401, "status": "UNAUTHENTICATED", "message":
                                                "Request had invalid authentication credentials."}})
        if SCOPE not in scopes:
            return FakeResponse(403, {"error": {"code": 403, "status": "PERMISSION_DENIED", "message":
                                                "Request had insufficient authentication scopes."}})
        return FakeResponse(200, {"resourceNames": [f"customers/{cid}" for cid in ACCESSIBLE_CUSTOMERS]})

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
