"""The OAuth 2.0 mechanics every sign-in shares, on Authlib's client (``authlib.integrations.requests_client``).

What a platform's sign-in looks like (its consent screen, token endpoint, scopes, PKCE, how ad accounts are listed)
is declared in its adapter module (``PlatformAdapter.oauth`` and the ``oauth_*`` class methods); this module only
builds the authorization URL, exchanges a code, refreshes a token and turns the token endpoint's refusals into our
error vocabulary. Protocol details (the grant's parameters, PKCE's S256 challenge, parsing the token answer and its
``error`` / ``error_description``) are Authlib's, not ours.

Every request makes one attempt (no urllib3 retries) with ``PLATFORM_HTTP_TIMEOUT``, and error texts never carry
the request (its body holds the client secret and the code).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import requests
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from django.utils import timezone
from requests.adapters import HTTPAdapter

from platforms.adapters.base import OAuthApp, TokenExpiry
from platforms.adapters.http import USER_AGENT
from platforms.errors import AuthError, PermanentError, PlatformError, TransientError

# PKCE's code verifier: RFC 7636 asks for 43 to 128 characters of [A-Z a-z 0-9 - . _ ~].
VERIFIER_LENGTH = 64


def new_state() -> str:
    """An unguessable state value (Authlib's generator: SystemRandom)."""
    return generate_token(40)


def new_code_verifier() -> str:
    return generate_token(VERIFIER_LENGTH)


def session(*, client: tuple[str, str], app: OAuthApp | None = None, redirect_uri: str | None = None,
            auth_method: str = "client_secret_post") -> OAuth2Session:
    """An Authlib session for one sign-in (one attempt per request, our User-Agent and timeout)."""
    oauth = OAuth2Session(
        client_id=client[0], client_secret=client[1], token_endpoint_auth_method=auth_method,
        scope=app.scope_separator.join(app.scopes) if app else None, redirect_uri=redirect_uri,
        code_challenge_method="S256" if app is not None and app.pkce else None,
        default_timeout=settings.PLATFORM_HTTP_TIMEOUT,
    )
    # Meta's token endpoint is a GET with the app's id and secret in the query string (its documented form).
    oauth.register_client_auth_method(("client_secret_query", _client_secret_query))
    oauth.headers["User-Agent"] = USER_AGENT
    oauth.trust_env = False
    adapter = HTTPAdapter(max_retries=0)
    oauth.mount("https://", adapter)
    oauth.mount("http://", adapter)
    return oauth


def _client_secret_query(client, method, uri, headers, body):
    return add_params_to_uri(uri, [("client_id", client.client_id), ("client_secret", client.client_secret)]), \
        headers, body


def authorization_url(*, endpoint: str, app: OAuthApp, client: tuple[str, str], redirect_uri: str, state: str,
                      code_verifier: str | None = None) -> str:
    """The consent screen's URL for this sign-in (with the S256 challenge when the platform takes PKCE)."""
    with session(client=client, app=app, redirect_uri=redirect_uri) as oauth:
        url, _ = oauth.create_authorization_url(
            endpoint, state=state, code_verifier=code_verifier if app.pkce else None, **dict(app.extra_params))
    return url


def fetch_token(*, platform: str, token_url: str, client: tuple[str, str], app: OAuthApp | None = None,
                redirect_uri: str | None = None, method: str = "POST", auth_method: str = "client_secret_post",
                **params) -> dict:
    """One call of a token endpoint (authorization code, refresh token or another grant in ``params``); the token
    answer as a dict. The platform's refusal (``error`` / ``error_description``) is an AuthError."""
    try:
        with session(client=client, app=app, redirect_uri=redirect_uri, auth_method=auth_method) as oauth:
            if params.get("grant_type") == "refresh_token":
                params.pop("grant_type")
                token = oauth.refresh_token(token_url, refresh_token=params.pop("refresh_token"), **params)
            else:
                token = oauth.fetch_token(token_url, method=method, **params)
    except OAuthError as exc:
        raise AuthError(refusal(platform, exc.error, exc.description)) from None
    except requests.Timeout:
        raise TransientError(f"{platform} did not answer its token endpoint in time.") from None
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status >= 500 or status == 429:
            raise TransientError(f"{platform}'s token endpoint answered HTTP {status}.") from None
        raise PermanentError(f"{platform}'s token endpoint answered HTTP {status}.") from None
    except requests.RequestException:
        raise TransientError(f"Could not reach {platform}'s token endpoint.") from None
    except ValueError:  # not a JSON object
        raise TransientError(f"{platform}'s token endpoint answered something that is not a token.") from None
    return dict(token)


def refusal(platform: str, error: str | None, description: str | None) -> str:
    """The token endpoint's own reason, in one sentence (Meta answers its Graph error object instead of a code)."""
    if isinstance(error, Mapping):
        error, description = error.get("type") or error.get("code"), description or error.get("message")
    text = ": ".join(part for part in (str(error or "").strip(), str(description or "").strip()) if part)
    return f"{platform} refused the sign-in ({text or 'no reason given'})."


def expiry_in(seconds, *, what: str = "access token", renewable: bool = False,
              source: str = "token response") -> TokenExpiry | None:
    """A lifetime in seconds (``expires_in``) as a date; None when the answer gives none (or 0: no expiry)."""
    try:
        value = int(seconds)
    except (TypeError, ValueError):
        return None
    if value <= 0:
        return None
    return TokenExpiry(timezone.now() + dt.timedelta(seconds=value), what=what, renewable=renewable, source=source)


def scopes_of(token: Mapping, *, separators: str = " ,") -> frozenset[str]:
    """The granted scopes of a token answer ("a b", "a,b" or a list)."""
    value = token.get("scope")
    if isinstance(value, (list, tuple)):
        return frozenset(str(v) for v in value)
    text = str(value or "")
    for separator in separators[1:]:
        text = text.replace(separator, separators[0])
    return frozenset(part for part in text.split(separators[0]) if part)


def missing_scopes(app: OAuthApp, granted: frozenset[str]) -> list[str]:
    return [scope for scope in app.required_scopes if scope not in granted]


__all__ = ["PlatformError", "authorization_url", "expiry_in", "fetch_token", "missing_scopes", "new_code_verifier",
           "new_state", "refusal", "scopes_of", "session"]
