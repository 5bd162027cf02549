"""Template filters of the sync pages (no queries here: the panel's data comes from syncs.selectors)."""

from __future__ import annotations

from django import template

from syncs import charts
from syncs.models import SyncRun

register = template.Library()


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


@register.filter
def size_change(run) -> str:
    """The audience size the platform reported before and after the run: "1,993 → 3, −99.8 %" ("" if unknown)."""
    return charts.size_change(run.size_before, run.audience_size)


@register.filter
def hold_share(run) -> str:
    """The share of the people on the platform a held run would remove: "25.0 %" ("" if unknown)."""
    if not run.held_before:
        return ""
    return f"{run.to_remove * 100 / run.held_before:.1f} %"


@register.filter
def run_status_label(status: str) -> str:
    """A run status as the pages name it ("held" -> "Held for review")."""
    try:
        return SyncRun.Status(status).label
    except ValueError:
        return str(status).capitalize()
