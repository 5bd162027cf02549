"""The small SVG chart of a sync's run history (points only; the template draws it)."""

from __future__ import annotations

from syncs.models import SyncRun


def history_chart(runs: list[SyncRun], *, width: int = 320, height: int = 80) -> dict | None:
    """Points for the small SVG chart of match rate (0..1) and audience size over finished runs, oldest first."""
    runs = [r for r in runs if r.match_rate is not None or r.audience_size is not None]
    if len(runs) < 2:
        return None
    step = width / (len(runs) - 1)
    biggest = max((r.audience_size or 0) for r in runs) or 1

    def points(values):
        return " ".join(
            f"{i * step:.1f},{height - v * height:.1f}" for i, v in enumerate(values) if v is not None
        )

    return {
        "width": width,
        "height": height,
        "match_rate": points([r.match_rate for r in runs]),
        "size": points([(r.audience_size / biggest) if r.audience_size is not None else None for r in runs]),
        "biggest": biggest,
    }
