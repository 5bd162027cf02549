"""Masking a connection's secrets in any text that came from outside (a platform's error message, an answer).

Platforms sometimes echo what they were sent, and not always verbatim: a token comes back URL-encoded in a
quoted request line, base64-encoded in an echoed ``Authorization: Basic`` header, upper-cased by a gateway,
or cut short ("invalid token EAAG1a2b…"). ``scrub`` masks all of these before a text reaches a
ConnectionEvent (which nobody can delete), ``Connection.last_error``, a sync run's message, a log line or a
page:

* the value itself, and its URL-encoded forms (``quote`` with and without "/" kept, ``quote_plus``);
* its base64 forms (standard and URL-safe, with or without padding, at each of the three byte alignments
  so it is found inside a longer encoded string such as ``user:secret``);
* all of them compared case-insensitively (``casefold``);
* and any fragment of MIN_FRAGMENT (8) or more consecutive characters of any of these forms — which also
  covers truncated values.

A whole-value match is replaced by the usual masked tail (``••••abcd``, as the connection page shows it);
anything else by ``••••`` alone, so a fragment's position never reveals more of the secret.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

MIN_FRAGMENT = 8
# Values shorter than this are too short to mask safely as fragments; they are only masked whole (>= 4).
MIN_WHOLE = 4
MASK = "••••"


def _base64_forms(raw: bytes) -> list[str]:
    forms = []
    for offset in range(3):
        # Aligned after ``offset`` unknown bytes: drop the groups that mix in the neighbours' bits.
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + raw).decode("ascii")
            if offset:
                encoded = encoded[4:]
            forms.append(encoded)
            forms.append(encoded.rstrip("="))
            if len(raw) % 3 or offset:
                forms.append(encoded[:-4])  # the last group depends on what follows
    return [form for form in forms if form]


def variants(value: str) -> list[str]:
    """The casefolded forms of ``value`` that ``scrub`` looks for."""
    raw = value.encode("utf-8")
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value), *_base64_forms(raw)}
    return sorted({form.casefold() for form in forms if form}, key=len, reverse=True)


def _secret_values(secrets) -> list[str]:
    if secrets is None:
        return []
    values: Iterable = secrets.values() if isinstance(secrets, Mapping) else secrets
    return [str(value) for value in values if value is not None and len(str(value)) >= MIN_WHOLE]


def _folded(text: str) -> tuple[str, list[int]]:
    """``text`` casefolded, and for each folded character the index of the original character it came from
    (casefold may turn one character into several, e.g. "ß" into "ss")."""
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = char.casefold()
        chars.append(folded)
        origin.extend([index] * len(folded))
    return "".join(chars), origin


def scrub(text, secrets) -> str:
    """``text`` with every form of every secret value in ``secrets`` (a mapping or an iterable) masked."""
    text = str(text or "")
    values = _secret_values(secrets)
    if not text or not values:
        return text
    folded, origin = _folded(text)
    spans: list[tuple[int, int, str]] = []  # (start, end) in original indices, replacement
    for value in sorted(set(values), key=len, reverse=True):
        forms = variants(value)
        whole = value.casefold()
        if len(value) < MIN_FRAGMENT:
            # Too short for fragments: the whole value and its encodings only.
            for form in forms:
                spans.extend(_occurrences(folded, form, origin, MASK if form != whole else None, value))
            continue
        windows = {form[i:i + MIN_FRAGMENT] for form in forms for i in range(len(form) - MIN_FRAGMENT + 1)}
        i = 0
        while i <= len(folded) - MIN_FRAGMENT:
            if folded[i:i + MIN_FRAGMENT] not in windows:
                i += 1
                continue
            end = i + MIN_FRAGMENT
            while end < len(folded) and any(folded[i:end + 1] in form for form in forms):
                end += 1
            piece = folded[i:end]
            spans.append((origin[i], origin[end - 1] + 1, _mask(value) if piece == whole else MASK))
            i += 1  # overlapping starts are merged below
    return _replace(text, spans)


def _occurrences(folded: str, form: str, origin: list[int], replacement: str | None, value: str):
    start = folded.find(form)
    while start != -1:
        yield origin[start], origin[start + len(form) - 1] + 1, replacement or _mask(value)
        start = folded.find(form, start + 1)


def _mask(value: str) -> str:
    from credentials.models import mask_secret

    return mask_secret(value)


def _replace(text: str, spans: list[tuple[int, int, str]]) -> str:
    if not spans:
        return text
    spans.sort(key=lambda span: (span[0], -span[1]))
    merged: list[list] = []
    for start, end, replacement in spans:
        if merged and start <= merged[-1][1]:
            last = merged[-1]
            if end > last[1]:
                last[1] = end
                last[2] = MASK  # a merged span is more than one whole value: no tail
            continue
        merged.append([start, end, replacement])
    out, position = [], 0
    for start, end, replacement in merged:
        out.append(text[position:start])
        out.append(replacement)
        position = end
    out.append(text[position:])
    return "".join(out)
