"""Reads for the alerts page (the signed-in user's own only)."""

from __future__ import annotations

from alerts.models import Incident


def recent_incidents(*, owner, limit: int = 20) -> list[Incident]:
    return list(Incident.objects.filter(owner=owner).prefetch_related("deliveries").order_by("-created_at", "-id")
                [:limit])
