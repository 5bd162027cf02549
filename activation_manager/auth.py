"""Sign-in helpers."""

from __future__ import annotations

# auth.User.username is 150 characters; django-axes stores the attempted name in a 255-character column.
MAX_USERNAME_LENGTH = 150


def axes_username(request, credentials: dict | None) -> str | None:
    """The username django-axes records and locks on: what was typed, cut to the longest real username,
    so a junk-length name is throttled like any other instead of failing the insert (a 500 on PostgreSQL)."""
    if credentials:
        username = credentials.get("username")
    else:
        username = request.POST.get("username") if request is not None else None
    return username[:MAX_USERNAME_LENGTH] if isinstance(username, str) else username
