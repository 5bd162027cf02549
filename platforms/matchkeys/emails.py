"""Email: the stored form (trimmed, lowercased, NFC) and the platforms' own forms (Google, UID2, TikTok)."""

from __future__ import annotations

import re
import unicodedata

from .reject import _Reject

_EMAIL_ATOM = r'[^@\s<>(),;:"\[\]\\.]+'
# local part: dot-separated atoms (no leading, trailing or double dot); domain: at least two labels.
_EMAIL_RE = re.compile(rf"{_EMAIL_ATOM}(?:\.{_EMAIL_ATOM})*@(?:{_EMAIL_ATOM}\.)+{_EMAIL_ATOM}")


def _norm_email(raw: str) -> str:
    value = raw.strip()
    if not value.isascii():
        value = unicodedata.normalize("NFC", value)
    value = value.lower()
    if value.startswith("mailto:"):
        value = value[7:]
    if _EMAIL_RE.fullmatch(value) is None:
        raise _Reject("not an email address" if value else "empty")
    return value


def _google_email(email: str) -> str:
    """Google Customer Match (Google's Formatter): for gmail.com / googlemail.com, remove "+" and everything
    after it from the local part, then every dot. Other domains unchanged. A local part left empty ("+x@gmail.com",
    which Google's Formatter refuses) keeps the address as it is."""
    local, _, domain = email.rpartition("@")
    if domain == "gmail.com" or domain == "googlemail.com":
        local = local.split("+", 1)[0].replace(".", "")
        return local + "@" + domain if local else email
    return email


def _uid2_email(email: str) -> str:
    """UID2 (The Trade Desk): gmail.com local part without dots and without "+" and what follows."""
    local, _, domain = email.rpartition("@")
    if domain == "gmail.com":
        local = local.split("+", 1)[0].replace(".", "")
        return local + "@" + domain if local else email  # UID2 refuses an empty local part
    return email


def _tiktok_email(email: str) -> str:
    """TikTok: the local part without "+" and what follows it (TikTok's audience formatting rules)."""
    local, _, domain = email.rpartition("@")
    if "+" in local:
        local = local.split("+", 1)[0]
        if local:
            return local + "@" + domain
    return email
