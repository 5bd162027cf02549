"""Template filters of the sync pages (no queries here: the panel's data comes from syncs.selectors)."""

from __future__ import annotations

from django import template

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
