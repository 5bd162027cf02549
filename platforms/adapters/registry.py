"""The platforms: adapter classes listed by ``settings.PLATFORM_ADAPTERS`` (dotted paths), found by code. The rest of
the app asks here, never imports a concrete adapter. ``sync_platforms`` keeps the Platform rows (what connections
point at) in step with the list; it runs after every ``migrate``."""

from __future__ import annotations

import logging
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from platforms.errors import UnknownPlatform

logger = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def _classes(paths: tuple[str, ...]) -> dict[str, type]:
    classes = {}
    for path in paths:
        try:
            adapter_class = import_string(path)
        except ImportError as exc:
            # One adapter that does not load must not take the other platforms down with it: its platform is
            # unavailable (connect and sync say so) until it is fixed.
            logger.error("platform adapter %s cannot be loaded (%s)", path, type(exc).__name__)
            continue
        code = adapter_class.code
        if code in classes:
            raise ValueError(f"two adapters claim the platform code {code!r}: {classes[code].__name__}, {path}")
        classes[code] = adapter_class
    return classes


def all_adapter_classes() -> dict[str, type]:
    """Platform code -> adapter class, in the settings' order."""
    return dict(_classes(tuple(settings.PLATFORM_ADAPTERS)))


def get_adapter_class(code: str):
    classes = _classes(tuple(settings.PLATFORM_ADAPTERS))
    try:
        return classes[code]
    except KeyError:
        raise UnknownPlatform(f"No adapter for platform {code!r}; known: {', '.join(sorted(classes))}") from None


def sync_platforms(**_) -> None:
    """Platform rows follow the registry: one per adapter (its name, docs link, partner flag), active; a row whose
    adapter left the list stays (connections may point at it) but inactive."""
    from platforms.models import Platform

    classes = all_adapter_classes()
    for code, adapter_class in classes.items():
        Platform.objects.update_or_create(code=code, defaults={
            "name": adapter_class.name, "docs_url": adapter_class.docs_url, "active": True,
            "is_partner_integration": adapter_class.partner,
        })
    Platform.objects.exclude(code__in=list(classes)).update(active=False)
