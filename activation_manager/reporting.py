"""What the debug page and error reports may show: Django's filter, plus passwords inside URLs.

Django's SafeExceptionReporterFilter hides settings and environment variables whose NAME looks secret
(KEY, TOKEN, PASS ...). DATABASE_URL, REDIS_URL and CELERY_BROKER_URL do not, but carry a password in their
VALUE (``postgres://user:password@host/db``); this filter masks that part wherever it appears.
"""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter

# scheme://user:password@  (user may be empty, as in redis://:password@host)
URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^@\s]+)(?P<at>@)")


def mask_url_passwords(text: str, substitute: str = "********************") -> str:
    """``text`` with the password part of every ``scheme://user:password@host`` replaced."""
    return URL_PASSWORD.sub(lambda m: f"{m['head']}{substitute}{m['at']}", text)


class SecretsExceptionReporterFilter(SafeExceptionReporterFilter):
    def cleanse_setting(self, key, value):
        value = super().cleanse_setting(key, value)
        if isinstance(value, str):
            return mask_url_passwords(str(value), self.cleansed_substitute)
        return value

    def get_traceback_frame_variables(self, request, tb_frame):
        return [(name, mask_url_passwords(str(value), self.cleansed_substitute) if isinstance(value, str) else value)
                for name, value in super().get_traceback_frame_variables(request, tb_frame)]
