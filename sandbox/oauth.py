"""The sandbox's OAuth consent screens and authorization codes, shared by the fakes of Meta, Google, LinkedIn and
TikTok (each serves the screen at its own platform's path and exchanges the codes at its own token endpoint, in its
own wire format).

The screen is a plain HTML page on the sandbox's origin, like the platform's own: the scopes asked for (each can be
unticked, as Google's granular consent and Meta's permission toggles allow), "Allow" and "Cancel". Allow redirects
to the ``redirect_uri`` with a one-time code and the ``state``; Cancel with ``error=access_denied`` (Meta adds
``error_reason=user_denied``), as the platforms answer a refusal. What the fakes refuse, the platforms refuse too:
an unknown client id, a ``redirect_uri`` that is not registered (the sandbox's apps have loopback redirect URIs
registered, as a developer's app does), a code used twice or after ``CODE_TTL`` seconds, a code redeemed by another
client or for another redirect URI, and — when the authorization asked for PKCE — a missing or wrong verifier.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from sandbox.base import FakeRequest, FakeResponse

CODE_TTL = 600  # seconds; real platforms give codes minutes, not hours
# Signs the tokens a fake issues, so another fake (Google's gRPC fakes) can recognise them without shared state.
# Not a secret: the sandbox is in the repository.
SIGNING_KEY = b"activation-manager-sandbox-oauth"


def signed(prefix: str) -> str:
    """A fresh token that any sandbox fake can verify (``verify_signed``)."""
    nonce = secrets.token_urlsafe(18)
    mac = hmac.new(SIGNING_KEY, f"{prefix}{nonce}".encode(), hashlib.sha256).hexdigest()[:24]
    return f"{prefix}{nonce}.{mac}"


def verify_signed(token: str, prefix: str) -> bool:
    if not token.startswith(prefix) or "." not in token[len(prefix):]:
        return False
    nonce, _, mac = token[len(prefix):].rpartition(".")
    expected = hmac.new(SIGNING_KEY, f"{prefix}{nonce}".encode(), hashlib.sha256).hexdigest()[:24]
    return hmac.compare_digest(mac, expected)


@dataclass
class Authorization:
    """One "Allow": what the code stands for until it is redeemed."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str = ""
    code_challenge_method: str = ""
    created: float = field(default_factory=time.time)


def _loopback(uri: str) -> bool:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost", "::1")


class ConsentScreen:
    """A platform's consent screen and the codes it hands out."""

    def __init__(self, platform: str, *, clients: Callable[[], Mapping[str, str]], client_param: str = "client_id",
                 scope_separator: str = " ", code_param: str = "code", deny_extra: Mapping[str, str] | None = None,
                 redirect_ok: Callable[[str], bool] = _loopback):
        self.platform = platform
        self.clients = clients  # client id -> secret
        self.client_param = client_param
        self.scope_separator = scope_separator
        self.code_param = code_param
        self.deny_extra = dict(deny_extra or {})
        self.redirect_ok = redirect_ok
        self.codes: dict[str, Authorization] = {}
        self.screens_shown = 0

    # The screen -----------------------------------------------------------------------------------
    def authorize(self, request: FakeRequest) -> FakeResponse:
        query = {key: values[-1] for key, values in request.query.items()}
        client_id = query.get(self.client_param, "")
        redirect_uri = query.get("redirect_uri", "")
        if client_id not in self.clients():
            return _page(400, f"{self.platform}: error", "<p>Invalid app ID: this app does not exist.</p>")
        if not redirect_uri or not self.redirect_ok(redirect_uri):
            return _page(400, f"{self.platform}: error",
                         "<p>The redirect_uri is not one registered for this app.</p>")
        if "response_type" in query and query["response_type"] != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type", "state": query.get("state", "")})
        decision = query.get("decision")
        state = query.get("state", "")
        if decision == "deny":
            return _redirect(redirect_uri, {"error": "access_denied", **self.deny_extra,
                                            "error_description": "The user denied the request.", "state": state})
        asked = tuple(s for s in query.get("scope", "").split(self.scope_separator) if s)
        if decision == "allow":
            granted = request.query.get("granted", [])
            scopes = tuple(s for s in asked if s in granted) if asked else ()
            code = secrets.token_urlsafe(24)
            self.codes[code] = Authorization(client_id, redirect_uri, scopes, query.get("code_challenge", ""),
                                             query.get("code_challenge_method", ""))
            return _redirect(redirect_uri, {self.code_param: code, "state": state})
        self.screens_shown += 1
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in query.items() if k not in ("decision", "granted"))
        boxes = "".join(f'<li><label><input type="checkbox" name="granted" value="{html.escape(s)}" checked> '
                        f"{html.escape(s)}</label></li>" for s in asked)
        body = (f'<p>The app <strong>{html.escape(client_id)}</strong> would like to manage your {self.platform} ad '
                f'accounts.</p><form method="get">{hidden}' + (f"<ul>{boxes}</ul>" if boxes else "") +
                '<button name="decision" value="allow">Allow</button> '
                '<button name="decision" value="deny">Cancel</button></form>')
        return _page(200, f"Sign in with {self.platform} (sandbox)", body)

    # The token endpoint's half ------------------------------------------------------------------------
    def redeem(self, code: str, *, client_id: str, client_secret: str | None, redirect_uri: str | None,
               code_verifier: str | None = None) -> Authorization | str:
        """The authorization a code stands for, or the OAuth error code the platform answers (``invalid_grant``
        for an unknown, used, expired or mismatched code; ``invalid_client`` for a wrong client)."""
        authorization = self.codes.pop(code, None)  # one use only, even when the rest fails
        if client_secret is not None and self.clients().get(client_id) != client_secret:
            return "invalid_client"
        if authorization is None or time.time() - authorization.created > CODE_TTL:
            return "invalid_grant"
        if authorization.client_id != client_id:
            return "invalid_grant"
        if redirect_uri is not None and authorization.redirect_uri != redirect_uri:
            return "invalid_grant"
        if authorization.code_challenge:
            if not code_verifier:
                return "invalid_grant"
            digest = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
            if not hmac.compare_digest(digest, authorization.code_challenge):
                return "invalid_grant"
        return authorization


def _page(status: int, title: str, body: str) -> FakeResponse:
    # No favicon request (the page is on the sandbox's origin, which has none).
    text = ("<!doctype html><html lang=en><head><meta charset=utf-8><link rel=icon href='data:,'>"
            f"<title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return FakeResponse(status, text, headers={"Content-Type": "text/html; charset=utf-8"})


def _redirect(uri: str, params: Mapping[str, str]) -> FakeResponse:
    separator = "&" if urlsplit(uri).query else "?"
    return FakeResponse(302, b"", headers={"Location": f"{uri}{separator}{urlencode(params)}"})
