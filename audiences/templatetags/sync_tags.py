"""Template tags for the sync panel included on the audience page (which only passes ``audience``)."""

from __future__ import annotations

from django import template
from django.db.models import OuterRef, Subquery

from audiences import sync as sync_service
from audiences.models import Sync, SyncRun

register = template.Library()


@register.simple_tag
def audience_sync_panel(audience):
    """The audience's syncs with their latest run, and the owner's active connections (three queries)."""
    latest = SyncRun.objects.filter(sync=OuterRef("pk")).order_by("-created_at", "-id")
    syncs = list(
        Sync.objects.filter(audience=audience, owner_id=audience.owner_id)
        .select_related("connection__platform")
        .annotate(latest_run_id=Subquery(latest.values("pk")[:1]))
        .order_by("created_at", "id")
    )
    runs = SyncRun.objects.in_bulk([s.latest_run_id for s in syncs if s.latest_run_id])
    for sync in syncs:
        sync.latest_run = runs.get(sync.latest_run_id)
    used = {s.connection_id for s in syncs}
    connections = [c for c in sync_service.active_connections_for(audience.owner) if c.pk not in used]
    return {
        "syncs": syncs,
        "connections": connections,
        "modes": Sync.Mode.choices,
        "schedules": Sync.Schedule.choices,
    }


@register.filter
def run_duration(run) -> str:
    """How long a finished run took: "42 s", "3 min 5 s", "1 h 2 min"; "—" while unknown."""
    if not (run.started_at and run.finished_at):
        return "—"
    seconds = max(0, int((run.finished_at - run.started_at).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
