"""Views for syncs and runs (thin: services in syncs/services.py and syncs/runs.py, reads in syncs/selectors.py).

Every object is looked up with ``owner=request.user`` (through the sync for runs): anyone else gets 404.
HTMX requests get partials (the audience's sync panel, the run progress); plain requests are redirected
with a message, so everything also works without JavaScript.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST

from audiences.models import Audience
from audiences.views import gone_while_watching
from syncs import platform_reports, runs, selectors, services
from syncs.models import Sync, SyncRun

# htmx stops polling when a response has this status (and still swaps it in).
STOP_POLLING = 286


def _audience_url(audience_id: int) -> str:
    try:
        return reverse("audience_detail", kwargs={"audience_pk": audience_id})
    except NoReverseMatch:
        return reverse("audience_list")


def _own_sync(request, sync_pk: int) -> Sync:
    return get_object_or_404(Sync.objects.select_related("audience", "connection__platform")
                             .exclude(audience__status=Audience.Status.DELETING), pk=sync_pk, owner=request.user)


def _own_run(request, run_pk: int) -> SyncRun:
    return get_object_or_404(
        SyncRun.objects.select_related("sync__audience", "sync__connection__platform")
        .exclude(sync__audience__status=Audience.Status.DELETING), pk=run_pk, sync__owner=request.user,
    )


def _panel(request, audience: Audience, *, error: str = "", error_field: str = "", error_sync: int | None = None,
           notice: str = ""):
    return render(request, "syncs/partials/audience_syncs.html", {
        "audience": audience, "panel": selectors.audience_sync_panel(audience),
        "sync_error": error, "sync_error_field": error_field, "sync_error_sync": error_sync, "sync_notice": notice,
    })


def _done(request, audience: Audience, *, error: str = "", error_field: str = "", error_sync: int | None = None,
          notice: str = ""):
    if request.htmx:
        return _panel(request, audience, error=error, error_field=error_field, error_sync=error_sync, notice=notice)
    if error:
        messages.error(request, error)
    elif notice:
        messages.success(request, notice)
    return redirect(_audience_url(audience.pk))


def _schedule_timing(request) -> dict:
    """The schedule's time of day ("HH:MM"), weekday (0 = Monday) and time zone from the form (absent: unchanged)."""
    return {name: request.POST.get(name) for name in ("schedule_time", "schedule_weekday", "schedule_timezone")}


@require_POST
def sync_create(request, audience_pk: int):
    audience = get_object_or_404(Audience.objects.visible(), pk=audience_pk, owner=request.user)
    try:
        sync = services.create_sync(
            owner=request.user, audience=audience, connection_id=request.POST.get("connection"),
            mode=request.POST.get("mode", "add"), schedule=request.POST.get("schedule", ""),
            **_schedule_timing(request),
        )
    except services.SyncError as exc:
        return _done(request, audience, error=exc.message, error_field=exc.field or "")
    return _done(request, audience, notice=f"Sync to {sync.connection} added.")


@require_POST
def sync_update(request, sync_pk: int):
    sync = _own_sync(request, sync_pk)
    try:
        services.update_sync(sync=sync, mode=request.POST.get("mode"), schedule=request.POST.get("schedule"),
                             hold_threshold=request.POST.get("hold_threshold"),
                             **_schedule_timing(request))
    except services.SyncError as exc:
        return _done(request, sync.audience, error=exc.message, error_field=exc.field or "", error_sync=sync.pk)
    return _done(request, sync.audience, notice=f"Sync to {sync.connection} updated.")


@require_POST
def sync_delete(request, sync_pk: int):
    sync = _own_sync(request, sync_pk)
    audience, label = sync.audience, str(sync.connection)
    services.delete_sync(sync=sync)
    return _done(request, audience, notice=f"Sync to {label} deleted (the platform audience was left in place).")


@require_GET
def sync_preview(request, sync_pk: int):
    """What the sync's next run would send: a partial for the audience page's sync row (HTMX), else a page."""
    sync = _own_sync(request, sync_pk)
    context = {"sync": sync, "preview": selectors.sync_preview(sync), "audience_url": _audience_url(sync.audience_id)}
    if request.htmx:
        return render(request, "syncs/partials/sync_preview.html", context)
    return render(request, "syncs/sync_preview.html", context)


@require_POST
def sync_run_now(request, sync_pk: int):
    sync = _own_sync(request, sync_pk)
    run = runs.start_run(sync=sync)
    url = reverse("sync_run_detail", kwargs={"run_pk": run.pk})
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def _progress(request, run: SyncRun, *, notice: str = "", error: str = ""):
    progress = selectors.progress_of(run)
    # htmx answers carry the run's history row too (out of band), so it never says "Queued" under "Running 20 %".
    response = render(request, "syncs/partials/run_progress.html", {
        "run": run, "p": progress, "can_resume": runs.can_resume(run), "notice": notice, "error": error,
        "history_row": bool(request.htmx),
    })
    if request.htmx and not progress.active:
        response.status_code = STOP_POLLING
        response["HX-Trigger"] = "run-ended"  # the run page re-reads its history
    return response


@require_GET
def sync_run_reports(request, run_pk: int):
    """The platform's reports on the run's requests (Google's Data Manager), polled while some are pending."""
    run = _own_run(request, run_pk)
    reports = platform_reports.summary(run)
    response = render(request, "syncs/partials/platform_reports.html", {"run": run, "reports": reports})
    if request.htmx and not (reports and reports["pending"]):
        response.status_code = STOP_POLLING
    return response


@require_GET
def sync_run_detail(request, run_pk: int):
    run = _own_run(request, run_pk)
    history = selectors.run_history(run)
    return render(request, "syncs/run_detail.html", {
        "run": run, "sync": run.sync, "p": selectors.progress_of(run), "can_resume": runs.can_resume(run),
        "history": history, "charts": selectors.history_charts(history),
        "audience_url": _audience_url(run.sync.audience_id),
    })


@require_GET
def sync_run_progress(request, run_pk: int):
    try:
        run = _own_run(request, run_pk)
    except Http404:
        deleted = SyncRun.objects.filter(pk=run_pk, sync__owner=request.user,
                                         sync__audience__status=Audience.Status.DELETING)
        if gone := gone_while_watching(request, deleted.exists()):
            return gone
        raise
    return _progress(request, run)


@require_POST
def sync_run_cancel(request, run_pk: int):
    run = runs.cancel_run(run=_own_run(request, run_pk))
    if run.status == SyncRun.Status.CANCELLED:
        # A queued or held run cancelled at once says so in its own message ("Cancelled after review: nothing was
        # sent."): a "Cancelled." above it would say it twice.
        notice = "" if run.error_message else "Cancelled."
    elif run.cancel_requested and run.status == SyncRun.Status.RUNNING:
        notice = "Cancelling: the run stops after the batch in flight."
    else:
        notice = "The run had already ended."
    if request.htmx:
        return _progress(request, run, notice=notice)
    messages.info(request, notice)
    return redirect("sync_run_detail", run_pk=run.pk)


@require_POST
def sync_run_confirm(request, run_pk: int):
    """Send a run that was held for review. If the audience was re-imported since it was planned, the held run is
    cancelled and a new one planned (which may be held again): the page moves to that run."""
    run = _own_run(request, run_pk)
    try:
        confirmed = runs.confirm_run(run=run)
    except services.SyncError as exc:
        run.refresh_from_db()
        if request.htmx:
            return _progress(request, run, error=exc.message)
        messages.error(request, exc.message)
        return redirect("sync_run_detail", run_pk=run.pk)
    if confirmed.pk != run.pk:
        notice = "The audience changed since this run was planned: a new run was started instead."
        url = reverse("sync_run_detail", kwargs={"run_pk": confirmed.pk})
        messages.info(request, notice)
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = url
            return response
        return redirect(url)
    notice = "Confirmed: the run is sending."
    if request.htmx:
        return _progress(request, confirmed, notice=notice)
    messages.success(request, notice)
    return redirect("sync_run_detail", run_pk=run.pk)


@require_POST
def sync_run_resume(request, run_pk: int):
    run = _own_run(request, run_pk)
    try:
        run = runs.resume_run(run=run)
    except services.SyncError as exc:
        if request.htmx:
            return _progress(request, run, error=exc.message)
        messages.error(request, exc.message)
        return redirect("sync_run_detail", run_pk=run.pk)
    if request.htmx:
        return _progress(request, run, notice="Resumed: batches already sent are skipped.")
    messages.success(request, "Resumed: batches already sent are skipped.")
    return redirect("sync_run_detail", run_pk=run.pk)
