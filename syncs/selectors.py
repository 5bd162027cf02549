"""Reads of syncs and runs for pages: a run's progress, the sync panel of an audience page."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from syncs.models import Sync, SyncBatch, SyncRun
from syncs.runs import ACTIVE, FINISHED
from syncs.services import active_connections_for

Status = SyncRun.Status


@dataclass
class Progress:
    run: SyncRun
    percent: int
    eta_seconds: int | None
    failed_batches: list[SyncBatch]

    @property
    def active(self) -> bool:
        return self.run.status in ACTIVE


def progress_of(run: SyncRun) -> Progress:
    if run.status in (Status.SUCCEEDED, Status.ATTENTION) or (run.status in FINISHED and run.total_batches == 0
                                          and run.status != Status.FAILED and run.status != Status.CANCELLED):
        percent = 100
    elif run.total_batches:
        percent = min(100, int(run.done_batches * 100 / run.total_batches))
    else:
        percent = 0
    eta = None
    if run.status == Status.RUNNING and run.started_at and 0 < run.done_batches < run.total_batches:
        elapsed = (timezone.now() - run.started_at).total_seconds()
        eta = int(elapsed / run.done_batches * (run.total_batches - run.done_batches))
    failed = list(run.batches.filter(status=SyncBatch.Status.FAILED).order_by("seq")[:20])
    return Progress(run=run, percent=percent, eta_seconds=eta, failed_batches=failed)


def audience_sync_panel(audience) -> dict:
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
        sync.consent = consent_summary(sync)
    used = {s.connection_id for s in syncs}
    connections = [c for c in active_connections_for(audience.owner) if c.pk not in used]
    return {
        "syncs": syncs,
        "connections": connections,
        "modes": Sync.Mode.choices,
        "schedules": Sync.Schedule.choices,
    }


@dataclass(frozen=True)
class ConsentStatement:
    """One consent the marketer stated for a sync's destination, as the connection's form words it."""

    label: str  # e.g. "ad user data"
    value: str  # the choice's label ("Granted", "Denied", ...), or "not stated"
    stated: bool


def consent_summary(sync: Sync) -> list[ConsentStatement] | None:
    """What the sync's connection states about consent (its form's ``consent_*`` fields), for the sync's row; None
    when the platform asks for no consent. Reads the connection's non-secret config only: no query, no secret."""
    from platforms.adapters.registry import get_adapter_class
    from platforms.errors import UnknownPlatform

    try:
        form_class = get_adapter_class(sync.connection.platform.code).credentials_form
    except UnknownPlatform:
        return None
    fields = {name: field for name, field in form_class.base_fields.items() if name.startswith("consent_")}
    if not fields:
        return None
    config = sync.connection.config or {}
    statements = []
    for name, field in fields.items():
        chosen = str(config.get(name) or "")
        labels = {str(value): str(text) for value, text in getattr(field, "choices", ()) if value}
        label = str(field.label or name).removeprefix("Consent:").strip()
        statements.append(ConsentStatement(label=label, value=labels.get(chosen, "not stated"),
                                           stated=chosen in labels))
    return statements
