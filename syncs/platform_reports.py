"""Platforms' reports on requests they processed after answering (Google's Data Manager): who asks, when, and
what is kept.

The engine records each request id a batch's answer carried (``PlatformRequest``, see
syncs/engine/checkpoint.py). ``check_due`` (the ``syncs.check_platform_reports`` task, every minute on the default
queue) asks the adapter (``request_status``) for those due, first ``PLATFORM_REPORT_AFTER`` seconds after sending
(Google: "Wait for 30 minutes, then send a RetrieveRequestStatus request for each successful request_id"), then
with a doubling wait until the platform says it is done, for at most ``PLATFORM_REPORT_GIVE_UP`` seconds. The run
page shows the reports (counts and reasons only: nothing a member gave).
"""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

from credentials.scrub import scrub
from platforms.adapters.base import Operation
from platforms.errors import PlatformError
from syncs.models import PlatformRequest, SyncRun

logger = logging.getLogger(__name__)

# Requests asked about per task run (the quota of a Cloud project is shared with the uploads).
PER_CHECK = 200


def check_due(*, now: datetime.datetime | None = None, limit: int = PER_CHECK) -> int:
    """Ask the platforms about the requests due; returns how many were asked about."""
    now = now or timezone.now()
    due = list(PlatformRequest.objects.filter(done=False, next_check_at__lte=now)
               .select_related("run__sync__connection__platform").order_by("next_check_at")[:limit])
    adapters = {}  # connection id -> (adapter or None, its secrets for scrubbing): decrypted once per check
    try:
        for request in due:
            connection = request.run.sync.connection
            if connection.pk not in adapters:
                adapters[connection.pk] = (_adapter_of(connection), connection.secrets)
            _check(request, *adapters[connection.pk], now)
    finally:
        for adapter, _ in adapters.values():
            if adapter is not None:
                adapter.close()
    return len(due)


def _adapter_of(connection):
    try:
        adapter = connection.adapter()
    except Exception:  # noqa: BLE001 - a connection that cannot build an adapter (bad secret) is asked later
        logger.warning("platform reports: connection %s has no usable adapter", connection.pk)
        return None
    return adapter if Operation.REQUEST_STATUS in adapter.capabilities.operations else None


def _check(request: PlatformRequest, adapter, secrets, now: datetime.datetime) -> None:
    given_up = now - request.sent_at >= datetime.timedelta(seconds=settings.PLATFORM_REPORT_GIVE_UP)
    report = None
    if adapter is not None:
        try:
            report = adapter.request_status(request.request_id)
        except PlatformError as exc:
            logger.info("platform reports: request %s not read (%s)", request.pk, type(exc).__name__)
    wait = settings.PLATFORM_REPORT_AFTER * 2 ** min(request.checks + 1, 6)  # 1 h, 2 h, 4 h ... after a first 30 min
    fields = {"checks": request.checks + 1, "next_check_at": now + datetime.timedelta(seconds=max(wait, 5))}
    if report is not None:
        fields.update(report=[scrub(line, secrets)[:500] for line in report.messages()], rejected=report.rejected,
                      done=report.done)
    if given_up and not fields.get("done"):
        fields["done"] = True
        fields["report"] = [*fields.get("report", request.report), "No final report from the platform after "
                            f"{settings.PLATFORM_REPORT_GIVE_UP // 3600} hours; not asked again."]
    PlatformRequest.objects.filter(pk=request.pk).update(**fields)


def summary(run: SyncRun) -> dict | None:
    """What the run page says of the platform's reports: counts and the lines of each request (None: no
    requests to report on)."""
    requests = run.platform_requests.all()
    totals = requests.aggregate(total=Count("id"), done=Count("id", filter=Q(done=True)), rejected=Sum("rejected"))
    if not totals["total"]:
        return None
    return {**totals, "pending": totals["total"] - totals["done"],
            "lines": [line for request in requests for line in request.report]}
