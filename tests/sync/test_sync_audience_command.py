"""manage.py sync_audience: the audience page's preview, the run page's confirm and the engine, from the shell, against
the fake Meta Graph API (the real Meta adapter through ``responses``); exit 0 / 1 / 2 / 3 and the JSON last line."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from audiences.models import Audience
from credentials.models import Connection
from platforms.matchkeys import platform_values, prepare_records
from sandbox.base import Fault
from sandbox.credentials import DEMO_CREDENTIALS
from syncs import engine, selectors
from syncs.models import Sync, SyncRun
from tests.sync.conftest import make_audience, new_generation, synthetic_rows

pytestmark = pytest.mark.django_db

JSON_KEYS = {"sync_id", "run_id", "status", "to_add", "to_remove", "sent", "removed", "rejected", "audience_size",
             "matched"}


@pytest.fixture(autouse=True)
def no_broker_server(settings):
    """As under `make run` (kombu's filesystem broker): --wait runs the run in the command's own process."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "filesystem://"


def sync_audience(*args) -> tuple[int, str, dict | None]:
    """(exit status, stdout, the JSON last line or None)."""
    out = io.StringIO()
    try:
        call_command("sync_audience", *map(str, args), stdout=out, stderr=io.StringIO())
        code = 0
    except SystemExit as exc:
        code = exc.code
    except CommandError as exc:
        code = exc.returncode
    text = out.getvalue()
    last = text.strip().splitlines()[-1] if text.strip() else ""
    return code, text, json.loads(last) if last.startswith("{") else None


def meta_emails(start, count):
    return {platform_values("meta", r.stored)["email"]
            for r in prepare_records(synthetic_rows(start, count), default_region="US")}


def raw_values(start, count) -> list[str]:
    return [value for row in synthetic_rows(start, count) for key, value in row.items()
            if key in ("email", "phone")]


def assert_no_pii_or_secrets(text: str, start=0, count=30):
    for value in raw_values(start, count)[:20]:
        assert value not in text
    for secret in (DEMO_CREDENTIALS["meta"]["access_token"], DEMO_CREDENTIALS["meta"]["app_secret"]):
        assert secret not in text


def held_emails(meta_graph, sync: Sync) -> set[str]:
    sync.refresh_from_db()
    return meta_graph.audience_values(sync.platform_audience_id, "EMAIL") if sync.platform_audience_id else set()


def test_preview_creates_the_sync_prints_the_preview_and_sends_nothing(user, meta_graph, meta_connection, queued):
    audience = make_audience(user, 30)
    code, text, summary = sync_audience(audience.pk, meta_connection.pk, "--preview", "--json")
    assert code == 0
    sync = Sync.objects.get(audience=audience, connection=meta_connection)
    assert sync.mode == Sync.Mode.ADD and sync.hold_threshold == Sync.DEFAULT_HOLD_THRESHOLD
    assert f"Sync {sync.pk} (created)" in text
    assert "Preview: will add 30, remove 0, 0 unchanged." in text
    assert "30 of 30 members (100 %) have a key Meta takes." in text
    assert summary == {"sync_id": sync.pk, "run_id": None, "status": "preview", "to_add": 30, "to_remove": 0,
                       "sent": 0, "removed": 0, "rejected": 0, "audience_size": None, "matched": None}
    assert not SyncRun.objects.exists() and queued == []
    assert meta_graph.requests == []  # the preview is computed here: not a call to the platform
    assert_no_pii_or_secrets(text)


def test_an_add_run_succeeds_in_process_and_the_fake_holds_the_people(user, meta_graph, meta_connection, queued):
    audience = make_audience(user, 30)
    code, text, summary = sync_audience(audience.pk, meta_connection.pk, "--mode", "add", "--wait", "--json")
    assert code == 0, text
    sync = Sync.objects.get(audience=audience, connection=meta_connection)
    run = SyncRun.objects.get(sync=sync)
    assert set(summary) == JSON_KEYS
    assert summary["sync_id"] == sync.pk and summary["run_id"] == run.pk and summary["status"] == "succeeded"
    assert (summary["to_add"], summary["to_remove"], summary["sent"], summary["removed"], summary["rejected"]) == (
        30, 0, 30, 0, 0)
    # The platform's own figures, as the run recorded them (the fake reports its matched people).
    assert (summary["audience_size"], summary["matched"]) == (run.audience_size, run.matched)
    assert 0 < summary["audience_size"] <= 30
    assert held_emails(meta_graph, sync) == meta_emails(0, 30)
    assert queued == []  # in this process: nothing was handed to a broker
    assert (f"Run {run.pk} succeeded: 30 sent, 0 removed, 0 rejected; Meta reports "
            f"{run.audience_size} people") in text
    assert_no_pii_or_secrets(text)

    # Again: the same sync, nothing to send, an empty run that succeeds.
    code, text, summary = sync_audience(audience.pk, meta_connection.pk, "--wait", "--json")
    # What Meta was sent, and apart the size it reported (the fake reports its matched people as its size).
    assert run.matched == run.audience_size
    assert code == 0 and (f"Preview: nothing to send; Meta has the 30 people sent to it. Meta last reported "
                          f"{run.audience_size} matched.") in text
    assert Sync.objects.filter(audience=audience).count() == 1
    assert (summary["status"], summary["to_add"], summary["sent"]) == ("succeeded", 0, 0)
    assert summary["run_id"] != run.pk


def test_a_mirror_run_past_the_threshold_is_held_and_confirm_sends_it(user, meta_graph, meta_connection, queued):
    audience = make_audience(user, 30)
    assert sync_audience(audience.pk, meta_connection.pk, "--wait")[0] == 0
    sync = Sync.objects.get(audience=audience)
    new_generation(audience, [(0, 20)])  # 10 of the 30 leave: 33 % > the default 20 %

    code, text, summary = sync_audience(audience.pk, meta_connection.pk, "--mode", "mirror", "--wait", "--json")
    assert code == 3, text
    sync.refresh_from_db()
    held = SyncRun.objects.get(sync=sync, status=SyncRun.Status.HELD)
    assert sync.mode == Sync.Mode.MIRROR
    assert "This run would be held for review: it removes 10 of the 30 people Meta holds (33.3 %)" in text
    assert f"Run {held.pk}: Held for review: this run would remove 10 of the 30 people Meta holds" in text
    assert "Run the command again with --confirm to send it" in text
    assert (summary["run_id"], summary["status"], summary["to_remove"], summary["removed"]) == (held.pk, "held", 10, 0)
    assert held_emails(meta_graph, sync) == meta_emails(0, 30)  # nothing was sent
    assert meta_graph.remove_requests == 0

    # Asked again without --confirm: the same held run, still held.
    code, text, summary = sync_audience(audience.pk, meta_connection.pk, "--wait", "--json")
    assert (code, summary["run_id"], summary["status"]) == (3, held.pk, "held")
    assert f"A run of this sync is held for review (run {held.pk}): --confirm sends it." in text

    code, text, summary = sync_audience(audience.pk, meta_connection.pk, "--confirm", "--wait", "--json")
    assert code == 0, text
    assert (summary["run_id"], summary["status"], summary["removed"], summary["sent"]) == (held.pk, "succeeded", 10, 0)
    assert SyncRun.objects.get(pk=held.pk).hold_confirmed
    assert held_emails(meta_graph, sync) == meta_emails(0, 20)
    assert queued == []


def test_confirm_sends_nothing_when_the_run_is_within_the_threshold_and_is_not_needed(user, meta_graph,
                                                                                     meta_connection):
    audience = make_audience(user, 30)
    assert sync_audience(audience.pk, meta_connection.pk, "--mode", "mirror", "--wait")[0] == 0
    new_generation(audience, [(0, 27)])  # 10 %: sent without review
    code, text, summary = sync_audience(audience.pk, meta_connection.pk, "--wait", "--json")
    assert (code, summary["status"], summary["removed"]) == (0, "succeeded", 3)
    assert "within this sync's 20 % threshold" in text


def test_without_wait_on_a_broker_server_the_run_goes_to_the_workers(user, meta_graph, meta_connection, queued,
                                                                      settings, django_capture_on_commit_callbacks):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    audience = make_audience(user, 30)
    with django_capture_on_commit_callbacks(execute=True):
        code, text, summary = sync_audience(audience.pk, meta_connection.pk, "--json")
    run = SyncRun.objects.get()
    assert (code, summary["run_id"], summary["status"], summary["to_add"]) == (0, run.pk, "queued", None)
    assert queued == [run.pk] and meta_graph.requests == []
    assert f"Run {run.pk} queued: a worker sends it" in text


def test_audience_and_connection_of_different_owners_exit_2_and_create_nothing(user, other_user, meta_graph,
                                                                               meta_connection):
    theirs = make_audience(other_user, 5)
    code, text, summary = sync_audience(theirs.pk, meta_connection.pk, "--json")
    assert code == 2
    assert "belong to different users" in summary["error"]
    assert not Sync.objects.exists() and meta_graph.requests == []


@pytest.mark.parametrize("args, message", [
    (("999", "{connection}"), "no audience 999"),
    (("{audience}", "999"), "no connection 999"),
    (("abc", "{connection}"), "audience id 'abc' is not a number"),
    (("{audience}", "{connection}", "--mode", "replace"), "--mode 'replace': Choose a mode"),
])
def test_usage_errors_exit_2(user, meta_connection, args, message):
    audience = make_audience(user, 3)
    argv = [a.format(audience=audience.pk, connection=meta_connection.pk) for a in args]
    with pytest.raises(CommandError) as caught:
        call_command("sync_audience", *argv, stdout=io.StringIO())
    assert caught.value.returncode == 2 and message in str(caught.value)
    assert not Sync.objects.exists()


def test_a_bad_mode_leaves_an_existing_sync_as_it_was(user, meta_connection):
    audience = make_audience(user, 3)
    assert sync_audience(audience.pk, meta_connection.pk, "--preview")[0] == 0
    assert sync_audience(audience.pk, meta_connection.pk, "--mode", "both", "--preview")[0] == 2
    assert Sync.objects.get().mode == Sync.Mode.ADD


def test_a_connection_that_is_not_active_cannot_get_a_new_sync(user, meta_connection):
    audience = make_audience(user, 3)
    Connection.objects.filter(pk=meta_connection.pk).update(status=Connection.Status.ERROR)
    code, _, summary = sync_audience(audience.pk, meta_connection.pk, "--json")
    assert code == 2 and "reconnect it first" in summary["error"]


def test_a_platform_that_refuses_the_token_fails_the_run_exit_1(user, meta_graph, meta_connection):
    audience = make_audience(user, 30)
    meta_graph.access_token = "revoked-on-meta"  # the connection's token no longer works
    code, text, summary = sync_audience(audience.pk, meta_connection.pk, "--wait", "--json")
    assert code == 1, text
    assert (summary["status"], summary["sent"]) == ("failed", 0)
    assert "Meta refused the connection's credentials" in text
    meta_connection.refresh_from_db()
    assert meta_connection.status == Connection.Status.ERROR
    assert_no_pii_or_secrets(text)


def test_a_platform_that_refuses_every_batch_ends_partly_failed_exit_1(user, meta_graph, meta_connection):
    audience = make_audience(user, 30)
    meta_graph.inject(Fault(method="POST", path_regex=r"/users$", times=10, response=meta_graph.error_response(
        100, "(#100) Invalid parameter", error_type="OAuthException")))
    code, text, summary = sync_audience(audience.pk, meta_connection.pk, "--wait", "--json")
    assert code == 1, text
    assert (summary["status"], summary["to_add"], summary["sent"]) == ("partial", 30, 0)
    assert "1 batch failed" in text
    assert not Audience.objects.get(pk=audience.pk).syncs.get().confirmed_members.exists()


def test_confirm_of_a_held_run_planned_before_a_re_import_sends_the_new_plan(user, meta_graph, meta_connection):
    audience = make_audience(user, 30)
    assert sync_audience(audience.pk, meta_connection.pk, "--mode", "mirror", "--wait")[0] == 0
    new_generation(audience, [(0, 20)])
    assert sync_audience(audience.pk, meta_connection.pk, "--wait")[0] == 3
    stale = SyncRun.objects.get(status=SyncRun.Status.HELD)
    new_generation(audience, [(0, 15)])  # re-imported after the hold: 15 leave now

    code, text, summary = sync_audience(audience.pk, meta_connection.pk, "--confirm", "--wait", "--json")
    assert code == 0, text
    assert "the held run's plan was out of date; a new run was started" in text
    stale.refresh_from_db()
    assert stale.status == SyncRun.Status.CANCELLED and stale.sent == stale.removed == 0
    assert summary["run_id"] != stale.pk and (summary["status"], summary["removed"]) == ("succeeded", 15)
    assert held_emails(meta_graph, Sync.objects.get()) == meta_emails(0, 15)


def test_wait_on_a_broker_server_watches_the_run_a_worker_sends(user, meta_graph, meta_connection, settings,
                                                                monkeypatch):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    audience = make_audience(user, 30)
    polls = []

    def worker_between_polls(seconds):
        """The command waits; meanwhile a worker takes the run from the queue and sends it."""
        polls.append(seconds)
        engine.execute_run(run_id=SyncRun.objects.get().pk)

    monkeypatch.setattr("syncs.management.commands.sync_audience.time.sleep", worker_between_polls)
    code, text, summary = sync_audience(audience.pk, meta_connection.pk, "--wait", "--json")
    assert code == 0, text
    assert polls and (summary["status"], summary["sent"]) == ("succeeded", 30)
    assert f"Run {summary['run_id']}: queued" in text


def test_confirm_does_not_send_a_held_run_planned_on_an_import_newer_than_the_preview(user, meta_graph,
                                                                                      meta_connection, monkeypatch):
    audience = make_audience(user, 30)
    assert sync_audience(audience.pk, meta_connection.pk, "--mode", "mirror", "--wait")[0] == 0
    new_generation(audience, [(0, 25)])  # 5 leave: within the threshold, the preview shows no hold
    original = selectors.sync_preview

    def preview_then_a_re_import_lands(sync):
        shown = original(sync)
        new_generation(audience, [(0, 10)])  # meanwhile 20 of 30 leave: this plan is held
        return shown

    monkeypatch.setattr(selectors, "sync_preview", preview_then_a_re_import_lands)
    code, text, summary = sync_audience(audience.pk, meta_connection.pk, "--confirm", "--wait", "--json")
    assert (code, summary["status"], summary["to_remove"], summary["removed"]) == (3, "held", 20, 0)
    assert "Preview: will add 0, remove 5, 25 unchanged." in text
    assert "planned on a newer import of the audience than the preview above" in text
    assert not SyncRun.objects.get(pk=summary["run_id"]).hold_confirmed
