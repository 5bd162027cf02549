"""A fake of Google's OAuth 2.0 token endpoint (https://oauth2.googleapis.com/token), refresh-token grant only.

It answers what google-auth's ``Credentials.refresh`` sends: an urlencoded POST with ``grant_type=refresh_token``,
``refresh_token``, ``client_id`` and ``client_secret``. Success is Google's JSON
``{"access_token", "expires_in", "scope", "token_type": "Bearer"}``; failures are Google's
``{"error", "error_description"}`` (``invalid_grant`` for an unknown, expired or revoked refresh token,
``invalid_client`` for a wrong client id / secret).

Access tokens are deterministic (``access_token_for(refresh_token)``) so the Google Ads gRPC fake, which may
run in another process (demo mode), can recognise the tokens this fake hands out without sharing state.
Mounted under ``/google-oauth`` on the shared loopback server: the token URL is ``{base}/google-oauth/token``.
"""

from __future__ import annotations

import hashlib

from sandbox.base import FakePlatform, FakeRequest, FakeResponse
from sandbox.credentials import DEMO_CREDENTIALS, EXPIRED_TOKEN

SCOPE = "https://www.googleapis.com/auth/adwords"
EXPIRES_IN = 3599


def access_token_for(refresh_token: str) -> str:
    """The access token the fake issues for a refresh token (stable across processes)."""
    return "ya29.fake-" + hashlib.sha256(f"fake-google-oauth:{refresh_token}".encode()).hexdigest()[:40]


DEMO_ACCESS_TOKEN = access_token_for(DEMO_CREDENTIALS["google_ads"]["refresh_token"])


class FakeGoogleOAuth(FakePlatform):
    prefix = "/google-oauth"

    def __init__(self):
        super().__init__()
        demo = DEMO_CREDENTIALS["google_ads"]
        # refresh token -> (client id, client secret) it was issued to
        self.grants: dict[str, tuple[str, str]] = {demo["refresh_token"]: (demo["client_id"], demo["client_secret"])}
        self.revoked: set[str] = {EXPIRED_TOKEN}
        self.token_requests = 0
        self.issued: list[str] = []

    def grant(self, refresh_token: str, client_id: str, client_secret: str) -> str:
        """Register another refresh token; returns the access token it will be exchanged for."""
        with self.lock:
            self.grants[refresh_token] = (client_id, client_secret)
        return access_token_for(refresh_token)

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
        return FakeResponse(200, {"access_token": token, "expires_in": EXPIRES_IN, "scope": SCOPE,
                                  "token_type": "Bearer"})
