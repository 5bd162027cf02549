"""Shared plumbing for adapters that speak plain HTTP with ``requests``, and their base class (``HttpAdapter``).

Each adapter keeps ONE ``requests.Session`` (``build_session``) and sends every call through
``send``, which makes exactly one attempt (retries belong to the sync engine) and turns network
failures into ``TransientError``. ``raise_for_status`` maps the HTTP status families onto our
error vocabulary for platforms that use HTTP statuses (LinkedIn, The Trade Desk, Netflix);
platforms that answer 200 with an error code in the body (TikTok) check their own codes after
``send`` and still call ``raise_for_status`` for the 5xx / 429 a proxy may answer.

Typical use::

    self.session = build_session({"Authorization": f"Bearer {token}"})
    response = send(self.session, "GET", url, platform=self.name, timeout=settings.PLATFORM_HTTP_TIMEOUT)
    raise_for_status(response, platform=self.name, message=error_message(response, "message"))
    data = response.json()
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import time
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter

from platforms.adapters.base import PlatformAdapter
from platforms.errors import AuthError, PermanentError, RateLimited, TransientError, join_sentences

# When a platform throttles without saying for how long.
DEFAULT_RETRY_AFTER = 60.0
USER_AGENT = "ActivationManager/1.0 (+requests)"


def build_session(headers: Mapping[str, str] | None = None) -> requests.Session:
    """A session with our User-Agent and the given default headers, and no automatic retries."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.headers.update(dict(headers or {}))
    # One attempt per call: the sync engine owns retry/backoff (urllib3 retries would hide 5xx).
    adapter = HTTPAdapter(max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def send(
    session: requests.Session, method: str, url: str, *, platform: str, timeout: float | None = None, **kwargs
) -> requests.Response:
    """One HTTP attempt. Connection failures and timeouts become ``TransientError``.

    The error message names the host only: URLs may carry identifiers in their query strings and
    request headers carry secrets, so neither goes into a message.
    """
    if timeout is None:
        from django.conf import settings

        timeout = settings.PLATFORM_HTTP_TIMEOUT
    from activation_manager.egress import ConnectFailed, EgressRefused

    try:
        return session.request(method, url, timeout=timeout, **kwargs)
    except ConnectFailed:
        raise TransientError(f"Could not reach {platform} ({urlsplit(url).netloc}): connection failed.") from None
    except EgressRefused as exc:  # a guarded session refused the address or a redirect: retrying cannot help
        raise PermanentError(f"{platform}: {exc.message}") from None
    except requests.ConnectTimeout:  # reads like any other failure to connect (no port-scanner oracle)
        raise TransientError(f"Could not reach {platform} ({urlsplit(url).netloc}): connection failed.") from None
    except requests.Timeout:
        raise TransientError(f"{platform} did not answer within {timeout:g} s ({urlsplit(url).netloc}).") from None
    except requests.ConnectionError:
        raise TransientError(f"Could not reach {platform} ({urlsplit(url).netloc}): connection failed.") from None


def retry_after_seconds(value: str | None, *, default: float = DEFAULT_RETRY_AFTER) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), else ``default``."""
    if not value:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when is None:
        return default
    return max(0.0, when.timestamp() - time.time())


def error_message(response: requests.Response, *fields: str) -> str:
    """The platform's own error text: the first non-empty JSON field of ``fields`` (dotted paths allowed),
    else a short slice of the body, else the HTTP reason."""
    try:
        body = response.json()
    except ValueError:
        body = None
    for path in fields:
        value = body
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    text = (response.text or "").strip()
    if text and body is None and len(text) <= 300:
        return text
    return f"HTTP {response.status_code} {response.reason or ''}".strip()


def raise_for_status(
    response: requests.Response,
    *,
    platform: str,
    message: str | None = None,
    auth_hint: str = "",
    default_retry_after: float = DEFAULT_RETRY_AFTER,
) -> None:
    """Raise our typed error for a non-2xx answer; return quietly on 2xx.

    401 / 403 -> AuthError (``auth_hint`` appended, e.g. "tokens expire after 60 days");
    429 -> RateLimited with Retry-After (or ``default_retry_after``); 408 and 5xx -> TransientError;
    any other 4xx -> PermanentError. ``message`` is the platform's text (see ``error_message``).
    """
    status = response.status_code
    if status < 400:
        return
    text = message or error_message(response, "message")
    detail = f"{platform}: {text}"
    if status in (401, 403):
        raise AuthError(join_sentences(detail, auth_hint), code=status)
    if status == 429:
        wait = retry_after_seconds(response.headers.get("Retry-After"), default=default_retry_after)
        raise RateLimited(detail, retry_after=wait, code=status)
    if status == 408 or status >= 500:
        raise TransientError(detail, code=status)
    raise PermanentError(detail, code=status)


def as_int(value) -> int | None:
    """A platform's number (int, or a numeric string) as an int; None for anything else."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def path_of(*parts: object) -> str:
    """A URL path from its segments, each quoted whole ("/" inside an id is data, never a separator)."""
    return "/" + "/".join(quote(str(part), safe="") for part in parts)


class HttpAdapter(PlatformAdapter):
    """An adapter that speaks HTTP with ``requests``: one session, one request path.

    A platform's module says what differs and no more: the session's headers (``session_headers``: auth), how a
    request is signed (``sign``, Netflix), the shape of its error answers (``error_text``) and what its own
    hint is on an auth failure (``auth_hint``), and, where a platform answers errors in a 200 envelope (TikTok),
    ``check``. Everything goes out through ``send`` (one attempt: retries are the engine's), and answers decode as
    JSON objects (``decode``).
    """

    auth_hint: ClassVar[str] = ""

    def __init__(self, credentials: Mapping[str, object]):
        super().__init__(credentials)
        self._session: requests.Session | None = None

    # Hooks ------------------------------------------------------------------------------
    def session_headers(self) -> dict[str, str]:
        """Default headers of every request (auth, version)."""
        return {}

    def new_session(self) -> requests.Session:
        return build_session(self.session_headers())

    def sign(self, method: str, url: str, body: bytes) -> dict[str, str]:
        """Headers that sign one request (none by default)."""
        return {}

    def error_text(self, response: requests.Response) -> str:
        """The platform's own words for a failed answer."""
        return error_message(response, "message")

    def check(self, response: requests.Response) -> None:
        """Raise our typed error for an answer that failed (HTTP statuses by default)."""
        raise_for_status(response, platform=self.name, message=self.error_text(response), auth_hint=self.auth_hint)

    # The one request path ---------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = self.new_session()
        return self._session

    def request(self, method: str, path: str, *, base: str | None = None, json: object = None,
                data: bytes | None = None, headers: Mapping[str, str] | None = None, **kwargs) -> requests.Response:
        """One checked request to ``(base or base_url) + path``."""
        url = (self.base_url if base is None else base) + path
        if json is not None:
            data = jsonlib.dumps(json, separators=(",", ":")).encode("utf-8")
            headers = {"Content-Type": "application/json", **(headers or {})}
        signed = self.sign(method, url, data or b"")
        if signed:
            headers = {**(headers or {}), **signed}
        response = send(self.session, method, url, platform=self.name, data=data, headers=headers, **kwargs)
        self.check(response)
        return response

    def call(self, method: str, path: str, **kwargs) -> dict:
        """``request``, its answer decoded."""
        return self.decode(self.request(method, path, **kwargs))

    def decode(self, response: requests.Response) -> dict:
        """The answer as a JSON object ({} for an empty body); anything else is a TransientError."""
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError:
            raise TransientError(f"{self.name}: the answer was not JSON (HTTP {response.status_code}).") from None
        return body if isinstance(body, dict) else {}

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
