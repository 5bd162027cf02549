"""Secrets kept between two attempts at a credentials form, so one wrong token does not cost the others.

When a connect or an edit fails, what the user typed into the secret fields that were not at fault is kept
for the retry: in the user's session, encrypted with the credentials cipher (the MultiFernet of the stored
connections), for KEEP_SECONDS, and tied to the user. It is never rendered: the form says "kept from your
last attempt" on the field, and leaving the field blank then uses it. A secret the platform refused is not
kept. Opening the form again, Cancel, or a successful save forgets the draft.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cryptography.fernet import InvalidToken

from credentials.fields import credentials_cipher

SESSION_KEY = "credential_drafts"
KEEP_SECONDS = 15 * 60


def scope_for(platform_code: str, connection_pk: int | None = None) -> str:
    """One draft per form: the connect form of a platform, or the edit form of one connection."""
    return f"{platform_code}:{connection_pk if connection_pk is not None else 'new'}"


def keep(request, *, scope: str, secrets: Mapping[str, str]) -> None:
    """Keep these secrets (encrypted) for the next attempt at this form; nothing to keep forgets the draft."""
    drafts = dict(request.session.get(SESSION_KEY) or {})
    values = {name: str(value) for name, value in secrets.items() if value}
    if values:
        payload = json.dumps({"user": request.user.pk, "secrets": values}).encode()
        drafts[scope] = credentials_cipher().encrypt(payload).decode()
    else:
        drafts.pop(scope, None)
    request.session[SESSION_KEY] = drafts


def kept(request, *, scope: str) -> dict[str, str]:
    """The secrets kept for this form; {} when none, expired, or not decryptable any more (a dropped key)."""
    token = (request.session.get(SESSION_KEY) or {}).get(scope)
    if not token:
        return {}
    try:
        payload = json.loads(credentials_cipher().decrypt(token.encode(), ttl=KEEP_SECONDS))
    except (InvalidToken, ValueError):
        forget(request, scope=scope)
        return {}
    if payload.get("user") != request.user.pk:
        forget(request, scope=scope)
        return {}
    return dict(payload.get("secrets") or {})


def forget(request, *, scope: str | None = None, platform_code: str | None = None) -> None:
    """Drop one form's draft, or every draft of a platform's forms (its card's Cancel)."""
    drafts = dict(request.session.get(SESSION_KEY) or {})
    names = [name for name in drafts if name == scope or (platform_code and name.startswith(f"{platform_code}:"))]
    if names:
        for name in names:
            drafts.pop(name)
        request.session[SESSION_KEY] = drafts
