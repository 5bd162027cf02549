"""Sync an audience to a connection from the shell, the way the audience page and the run page do it.

    python manage.py sync_audience AUDIENCE_ID CONNECTION_ID [--mode add|mirror] [--preview] [--confirm] [--wait]
        [--json]

Creates the sync when the pair has none (``syncs.services.create_sync``, the owner checks of the page) or sets its
mode (``update_sync``); prints the preview of its next run (``syncs.selectors.sync_preview``, the audience page's);
with ``--preview`` stops there. Otherwise starts a run (``syncs.runs.start_run``; a run already queued, running or
held is the one followed). A run held for review is sent only with ``--confirm`` (``runs.confirm_run``, the run
page's Confirm), and only when it was planned on the audience the preview described. ``--wait`` follows the run to
its end: in this process when there is no broker server (``CELERY_TASK_ALWAYS_EAGER``, or kombu's filesystem broker
of ``make run``: no worker may be running, and none is needed), else by watching the run a worker sends. Without
``--wait`` the run is handed to the workers and the command returns.

Exit status: 0 succeeded (or queued, without ``--wait``; or the preview was shown); 3 held for review or needs
attention; 2 usage error (unknown audience or connection, a bad mode, owners that differ); 1 failed, partly failed
or cancelled. With ``--json`` the last line is one object: ``{"sync_id", "run_id", "status", "to_add",
"to_remove", "sent", "removed", "rejected", "audience_size", "matched"}`` (``to_add``: the people the run sends,
joining or with changed details, as the preview's "will add"). Output carries ids, counts and the names the
marketer gave; never a member's data or a credential.
"""

from __future__ import annotations

import json
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audiences.models import Audience
from credentials.models import Connection
from syncs import engine, runs, selectors, services
from syncs.models import Sync, SyncRun

Status = SyncRun.Status
EXIT_ATTENTION = 3
EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_CODES = {Status.SUCCEEDED: 0, Status.QUEUED: 0, Status.RUNNING: 0, Status.HELD: EXIT_ATTENTION,
              Status.ATTENTION: EXIT_ATTENTION, Status.PARTIAL: EXIT_FAILED, Status.FAILED: EXIT_FAILED,
              Status.CANCELLED: EXIT_FAILED}
# How often a run that a worker sends is looked at (--wait with a broker server).
POLL_SECONDS = 1.0


def broker_server() -> bool:
    """Whether a broker server hands tasks to workers. Without one (eager tasks, kombu's filesystem or memory
    transport) ``--wait`` runs the run in this process."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return False
    return not str(settings.CELERY_BROKER_URL).startswith(("filesystem:", "memory:"))


class Command(BaseCommand):
    help = ("Sync an audience to a connection: creates the sync (or sets its mode), prints the preview of its next "
            "run, starts the run (a run held for review needs --confirm) and with --wait follows it to the end.")

    def add_arguments(self, parser):
        parser.add_argument("audience", help="the audience's id")
        parser.add_argument("connection", help="the connection's id (the audience's owner's)")
        parser.add_argument("--mode", default=None, metavar="add|mirror",
                            help="add only, or mirror (add and remove); a new sync defaults to add, an existing one "
                                 "keeps its mode unless given")
        parser.add_argument("--preview", action="store_true", help="print the preview and stop: nothing is sent")
        parser.add_argument("--confirm", action="store_true",
                            help="send a run held for review (it would remove more than the sync's threshold)")
        parser.add_argument("--wait", action="store_true",
                            help="follow the run to its end (in this process when there is no broker server)")
        parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")

    def handle(self, *args, **options):
        self.options = options
        audience = self._audience(options["audience"])
        connection = self._connection(options["connection"], audience)
        sync, created = self._sync(audience, connection, options["mode"])
        # Read before the preview: a held run planned on a later import is not the one the preview shows.
        generation = Audience.objects.values_list("generation", flat=True).get(pk=audience.pk)
        preview = selectors.sync_preview(sync)
        self._print_preview(sync, preview, created)
        if options["preview"]:
            self._finish(sync, None, preview)
            return
        local = not broker_server()
        run = runs.start_run(sync=sync, enqueue=not (local and options["wait"]))
        run = self._follow(run, generation=generation, in_process=local and options["wait"])
        self._print_run(run, preview)
        self._finish(sync, run, preview)

    # the arguments ----------------------------------------------------------------------------------------------

    def _usage(self, message: str):
        if self.options["json"]:
            self.stdout.write(json.dumps({"error": message}))
        raise CommandError(message, returncode=EXIT_USAGE)

    def _id(self, value: str, what: str) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if number <= 0:
            self._usage(f"{what} id {value!r} is not a number")
        return number

    def _audience(self, value: str) -> Audience:
        pk = self._id(value, "audience")
        audience = Audience.objects.visible().select_related("owner").filter(pk=pk).first()
        if audience is None:
            self._usage(f"no audience {pk}")
        return audience

    def _connection(self, value: str, audience: Audience) -> Connection:
        pk = self._id(value, "connection")
        connection = Connection.objects.select_related("platform").filter(pk=pk).first()
        if connection is None:
            self._usage(f"no connection {pk}")
        if connection.owner_id != audience.owner_id:
            # Never one user's audience through another's account (Sync.save refuses it too).
            self._usage(f"audience {audience.pk} and connection {connection.pk} belong to different users: "
                        + Sync.OWNERS_DIFFER)
        return connection

    def _sync(self, audience: Audience, connection: Connection, mode: str | None) -> tuple[Sync, bool]:
        """The pair's sync, created (the page's checks) or with its mode set; (sync, whether created)."""
        sync = Sync.objects.select_related("audience", "connection__platform").filter(
            audience=audience, connection=connection).first()
        try:
            if sync is None:
                sync = services.create_sync(owner=audience.owner, audience=audience, connection_id=connection.pk,
                                            mode=mode or Sync.Mode.ADD)
                return sync, True
            if mode is not None:
                services.update_sync(sync=sync, mode=mode)
        except services.SyncError as exc:
            self._usage(f"--mode {mode!r}: {exc.message}" if exc.field == "mode" else exc.message)
        return sync, False

    # the run ----------------------------------------------------------------------------------------------------

    def _follow(self, run: SyncRun, *, generation: int, in_process: bool) -> SyncRun:
        """Drive ``run`` as far as the options say: confirm it when held (once per plan), run or watch it when
        waiting. Returns the run the command ends on (a confirmation may replace a stale held run by a new one)."""
        seen = None
        while True:
            run.refresh_from_db()
            if run.status == Status.HELD:
                if not self.options["confirm"] or (run.audience_generation or 0) > generation:
                    # Without --confirm; or planned on a re-import newer than the preview shown: review it first.
                    return run
                run = runs.confirm_run(run=run, enqueue=not in_process)
                self.stdout.write(f"Run {run.pk}: confirmed after review." if run.hold_confirmed else
                                  f"Run {run.pk}: the held run's plan was out of date; a new run was started.")
                continue
            if run.status not in runs.ACTIVE or not self.options["wait"]:
                return run
            if in_process:
                # Claims a queued run (or one whose worker went silent); a live worker's run is left to it.
                engine.execute_run(run_id=run.pk)
                run.refresh_from_db()
                if run.status not in runs.ACTIVE:
                    continue
            progress = (run.status, run.done_batches, run.total_batches)
            if progress != seen:
                seen = progress
                self.stdout.write(f"Run {run.pk}: {run.get_status_display().lower()}"
                                  + (f", {run.done_batches}/{run.total_batches} batches" if run.total_batches else ""))
            time.sleep(POLL_SECONDS)

    # the output -------------------------------------------------------------------------------------------------

    def _print_preview(self, sync: Sync, preview: selectors.SyncPreview, created: bool) -> None:
        out, f = self.stdout, preview.figures
        out.write(f"Sync {sync.pk}{' (created)' if created else ''}: audience {sync.audience_id} "
                  f"“{sync.audience.name}” → {preview.platform} · {sync.connection.label} "
                  f"({sync.get_mode_display().lower()})")
        if preview.pending_run is not None:
            pending = preview.pending_run
            out.write(f"A run of this sync is {pending.get_status_display().lower()} (run {pending.pk})"
                      + (": --confirm sends it." if pending.status == Status.HELD else "."))
        if preview.nothing_to_send:
            out.write(f"Preview: nothing to send; {preview.holds}")
        else:
            detail = f" ({preview.adds_detail})" if preview.adds_detail else ""
            out.write(f"Preview: will add {preview.adds:,}{detail}, remove {preview.removes:,}, "
                      f"{f.unchanged:,} unchanged.")
        if preview.leavers:
            out.write(preview.leavers)
        if preview.hold:
            out.write(preview.hold)
        share = f" ({preview.usable_percent} %)" if preview.usable_percent is not None else ""
        out.write(f"{f.usable:,} of {f.members:,} members{share} have a key {preview.platform} takes.")

    def _print_run(self, run: SyncRun, preview: selectors.SyncPreview) -> None:
        out = self.stdout
        status = run.get_status_display().lower()
        if run.status in runs.ACTIVE:
            out.write(f"Run {run.pk} {status}: a worker sends it (follow it on its run page, or use --wait).")
            if preview.figures.would_hold and not run.hold_confirmed:
                out.write("The worker will hold it for review when it plans it: confirm it on its run page, or run "
                          "this command with --wait --confirm.")
            return
        if run.status == Status.HELD:
            out.write(f"Run {run.pk}: {run.error_message or 'held for review; nothing was sent.'}")
            if self.options["confirm"]:
                out.write("It was planned on a newer import of the audience than the preview above: run the command "
                          "again to see its preview, then confirm it.")
            else:
                out.write("Run the command again with --confirm to send it, or cancel it on its run page.")
            return
        figures = f"{run.sent:,} sent, {run.removed:,} removed, {run.rejected:,} rejected"
        if run.audience_size is not None:
            figures += f"; {run.sync.connection.platform.name} reports {run.audience_size:,} people"
            if run.matched is not None and run.matched != run.audience_size:
                figures += f" ({run.matched:,} matched)"
        out.write(f"Run {run.pk} {status}: {figures}.")
        if run.error_message:
            out.write(run.error_message)

    def _finish(self, sync: Sync, run: SyncRun | None, preview: selectors.SyncPreview) -> None:
        """The JSON line (--json), then the exit status of the run's state."""
        if self.options["json"]:
            if run is None:
                summary = {"run_id": None, "status": "preview", "to_add": preview.adds, "to_remove": preview.removes,
                           "sent": 0, "removed": 0, "rejected": 0, "audience_size": None, "matched": None}
            else:
                planned = run.audience_generation is not None
                summary = {"run_id": run.pk, "status": run.status,
                           "to_add": run.to_add + run.to_update if planned else None,
                           "to_remove": run.to_remove if planned else None, "sent": run.sent,
                           "removed": run.removed, "rejected": run.rejected, "audience_size": run.audience_size,
                           "matched": run.matched}
            self.stdout.write(json.dumps({"sync_id": sync.pk, **summary}))
        code = 0 if run is None else EXIT_CODES.get(run.status, EXIT_FAILED)
        if code:
            raise SystemExit(code)
