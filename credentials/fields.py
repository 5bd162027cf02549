"""An encrypted JSON field on cryptography's MultiFernet.

The newest key (first in CREDENTIALS_KEYS) encrypts; every key decrypts, so keys can be
rotated without downtime (see the rotate_credential_keys command). A token no key can
decrypt raises InvalidToken: failing loudly beats handing ciphertext around as if it were
the secret.
"""

import json
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "CREDENTIALS_KEYS is empty: set it to one or more Fernet keys (newest first). "
            "`make run` writes a local one into .env."
        )
    return MultiFernet([Fernet(key.encode()) for key in keys])


def credentials_cipher() -> MultiFernet:
    return _multifernet(tuple(settings.CREDENTIALS_KEYS))


class EncryptedJSONField(models.BinaryField):
    """Stores a JSON-serialisable dict as a Fernet token; only ``isnull`` lookups make sense."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def get_prep_value(self, value):
        if value is None:
            return None
        plaintext = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        return credentials_cipher().encrypt(plaintext)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return json.loads(credentials_cipher().decrypt(bytes(value)))

    def to_python(self, value):
        return value

    def get_lookup(self, lookup_name):
        if lookup_name != "isnull":
            return None
        return super().get_lookup(lookup_name)

    def value_to_string(self, obj):
        # Never serialise plaintext (dumpdata, admin history): emit nothing.
        return ""
