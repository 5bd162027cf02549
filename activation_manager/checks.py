"""System checks for settings a deployment must get right (``manage.py check --deploy`` runs them)."""

from __future__ import annotations

import binascii

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def credentials_keys_check(app_configs=None, **kwargs) -> list[Error]:
    """CREDENTIALS_KEYS must hold at least one valid Fernet key, and nothing else.

    Without a key no connection can be stored or read; an invalid entry fails every decryption the moment
    credentials_cipher() is built. Entries are named by position only: a key is never printed.
    """
    keys = [str(key).strip() for key in getattr(settings, "CREDENTIALS_KEYS", None) or []]
    if not any(keys):
        return [Error(
            "CREDENTIALS_KEYS is empty: connections' secrets cannot be encrypted or read.",
            hint="Set CREDENTIALS_KEYS to one or more comma-separated Fernet keys, newest first "
                 "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())').",
            id="activation_manager.E001",
        )]
    errors = []
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, binascii.Error, TypeError):
            errors.append(Error(
                f"CREDENTIALS_KEYS entry {position} of {len(keys)} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes).",
                hint="Replace or remove it; the first entry encrypts, the others only decrypt (key rotation).",
                id="activation_manager.E002",
            ))
    return errors
