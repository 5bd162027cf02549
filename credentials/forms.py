"""The credential form of each platform, as its adapter declares it (platforms/adapters/<platform>.py), and what
the connection pages read off it."""

from __future__ import annotations

import re

from platforms.adapters.base import CredentialsForm


def credentials_form_for(code: str) -> type[CredentialsForm]:
    """The credential form class of a platform (UnknownPlatform, a LookupError, for an unknown code)."""
    from platforms.adapters import get_adapter_class

    return get_adapter_class(code).credentials_form


def secret_labels(code: str) -> dict[str, str]:
    """Secret field name -> its human label ("Access token"), for masked tails."""
    form_class = credentials_form_for(code)
    return {name: str(form_class.base_fields[name].label or name) for name in form_class.secret_fields}


def required_secrets(code: str) -> tuple[str, ...]:
    form_class = credentials_form_for(code)
    return tuple(name for name in form_class.secret_fields if form_class.base_fields[name].required)


def fields_named_in(code: str, message: str) -> list[str]:
    """The credential fields a platform's answer names, by label or field name ("Check the App secret").

    The adapters' messages name the credential to check in the form's own words, so a refused connect can
    mark the field at fault without the credentials code knowing any platform's error codes. The label
    field is never named: it is ours, the platform never sees it.
    """
    form_class = credentials_form_for(code)
    text = str(message or "").lower()
    named = []
    for name, form_field in form_class.base_fields.items():
        if name == "label":
            continue
        words = {str(form_field.label or "").lower(), name.lower(), name.replace("_", " ").lower()}
        if any(word and re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", text) for word in words):
            named.append(name)
    return named
