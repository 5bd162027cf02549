"""The app's own small vocabulary for what went wrong on a platform.

Adapters translate each platform's error codes into these at the edge; nothing past an
adapter knows a platform's codes. Messages are the platform's own words (never secrets).
"""


class PlatformError(Exception):
    """Base class. ``message`` is safe to show to the marketer."""

    retryable = False

    def __init__(self, message: str, *, code: str | int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code


class AuthError(PlatformError):
    """Token invalid, expired or lacking permission: no retry; the connection goes to error."""


class RateLimited(PlatformError):
    """Throttled: retry after ``retry_after`` seconds (the platform's hint, or our estimate)."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, code: str | int | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class TransientError(PlatformError):
    """5xx, timeouts, dropped connections: retry with exponential backoff and jitter."""

    retryable = True


class PermanentError(PlatformError):
    """The request itself is wrong (bad parameter, terms not accepted): fail that batch only."""


class UnknownPlatform(LookupError):
    pass


def join_sentences(*parts: str) -> str:
    """The platform's words and our hint as sentences: a full stop closes a part that lacks one.

    Platforms often answer without one ("Invalid OAuth access token - Cannot parse access token"), and the
    hint that follows would run on from it.
    """
    sentences = []
    for part in (str(p or "").strip() for p in parts):
        if part:
            sentences.append(part if part[-1] in ".!?" else f"{part}.")
    return " ".join(sentences)
