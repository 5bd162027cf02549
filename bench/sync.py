"""Sync benchmark: an N-member audience through the real sync engine and adapter to the platform's fake.

    .venv/bin/python bench/sync.py [N] [--db postgres|sqlite] [--platform meta|google_ads] [--seed 7]
                                   [--change PCT] [--via-import] [--profile PATH [--profile-rerun]]

1. A fresh, migrated database (bench/people.py: BENCH_DATABASE_URL on PostgreSQL, a file under var/bench/ on
   SQLite).
2. The audience, in a child process (its memory and time are not the sync's): N people of the twelve columns
   (bench/people.py, deterministic from ``--seed``), through ``audiences.imports.import_records`` (the importer's
   stage and apply, from prepared records), or with ``--via-import`` from a generated CSV file through the import
   task itself (``create_import_from_path`` -> ``start_import`` -> ``audiences.tasks.import_audience``). Person
   key: the customer id.
3. The platform's fake (sandbox.meta on a loopback HTTP server; ``--platform google_ads``: the gRPC Google Ads fake
   and the fake OAuth endpoint) in another process, so its work does not compete with the engine for the GIL, as
   a real platform's would not.
4. The connection through ``credentials.services.connect`` (the credentials are tested on the fake), a mirror sync
   through ``syncs.services.create_sync``; each run is started with ``syncs.runs.start_run`` (queued to a broker
   folder of the benchmark's own, which nobody reads) and executed here with ``syncs.engine.execute_run``, the
   Celery task's body, with the adapter built from the connection and the platform's real rate limiter.
5. A second run: with nothing changed, or with ``--change PCT`` after a re-import (same way as step 2) in which
   the first PCT % of the people are replaced by as many new ones.

Prints per run: status, records sent, wall time, time inside the adapter's add call, planning and checkpoint time,
peak RSS of this process; on PostgreSQL, the bytes a sync keeps per synced member (SyncMember and the run's batches,
pg_total_relation_size after the run's own VACUUM) and the audience's member tables per member. The last line is
one JSON object (see ``summary`` below). Targets (issues 8 and 13): 1 M members to the fake Meta API in under 60 s
wall; at most 100 bytes per synced member.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import people  # noqa: E402

PERSON_KEY = "external_id"


# ---------------------------------------------------------------------------------------------------------
# Child processes: filling the audience


def fill(audience_id: int, n: int, seed: int, skip: int) -> None:
    """Persons skip .. skip + n - 1 become the audience's membership, through the importer's stage and apply."""
    import django

    django.setup()
    from audiences import imports
    from audiences.models import Audience

    audience = Audience.objects.get(pk=audience_id)
    imports.import_records(audience=audience, records=people.prepared(n, seed, skip=skip), person_key=PERSON_KEY)


def import_file(audience_id: int, path: str) -> None:
    """The file through the import task (sniff, map, stream, stage, apply, VACUUM, coverage)."""
    import django

    django.setup()
    from audiences import imports, tasks
    from audiences.models import Audience, ImportJob

    audience = Audience.objects.get(pk=audience_id)
    job = imports.create_import_from_path(owner=audience.owner, audience=audience, path=path)
    imports.start_import(job, people.MAPPING, person_key=PERSON_KEY, enqueue=False)
    tasks.import_audience(job.pk)
    job = ImportJob.objects.get(pk=job.pk)
    if job.status != ImportJob.Status.SUCCEEDED:
        raise SystemExit(f"import failed: {job.error_message}")


def populate(audience, args, skip: int) -> float:
    """Fill (or re-fill) the audience in a child process; returns the seconds it took."""
    started = time.perf_counter()
    if args.via_import:
        path = people.write_csv(people.BENCH_DIR / f"sync-{args.n}-{args.seed}-from-{skip}.csv", args.n, args.seed,
                                skip=skip)
        command = ["--import-file", str(audience.pk), str(path)]
    else:
        command = ["--fill", str(audience.pk), str(skip)]
    subprocess.run([sys.executable, __file__, str(args.n), "--seed", str(args.seed), *command], check=True,
                   env=os.environ.copy(), cwd=ROOT)
    audience.refresh_from_db()
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------------------
# The fake, in its own process


def serve_fake(pipe, platform: str) -> None:
    """Child process: the platform's fake on loopback; answers ("stats", platform audience id) and "stop"."""
    from sandbox.base import FakeServer

    if platform == "meta":
        from sandbox.meta import FakeMetaGraph

        fake = FakeMetaGraph()
        fake.record_requests = False
        handled = [0.0]
        handle = fake.handle

        def timed_handle(request, _handle=handle):
            started = time.perf_counter()
            try:
                return _handle(request)
            finally:
                # The fake holds a million members as Python objects, which the cyclic GC would rescan now and
                # then (0.75 s a full pass): a pause of the stand-in, not of any platform. Freezing what is
                # alive after each request keeps it out of later passes (refcounting still frees it).
                gc.freeze()
                handled[0] += time.perf_counter() - started

        fake.handle = timed_handle
        server = FakeServer([fake]).start()
        pipe.send({"meta": f"{server.url}/meta", "url": server.url})
    else:
        from sandbox.google_ads import FakeGoogleAdsServer
        from sandbox.google_oauth import FakeGoogleOAuth

        server = FakeServer([FakeGoogleOAuth()]).start()
        fake = FakeGoogleAdsServer()
        fake.record_requests = False
        fake.start()
        pipe.send({"google_ads": fake.address, "oauth": f"{server.url}/google-oauth/token", "url": server.url})
    while True:
        command = pipe.recv()
        if isinstance(command, tuple) and command[0] == "stats":
            if platform == "meta":
                with fake.lock:
                    pipe.send({"received": fake.received_rows["add"], "removed": fake.received_rows["remove"],
                               "requests": fake.add_requests, "fake_seconds": round(handled[0], 2),
                               "audience_size": len(fake.audience_members(command[1]))})
            else:
                fake.finish_jobs()  # Google runs offline user data jobs later; count what they added
                pipe.send({"received": fake.counters["operations"], "removed": None,
                           "requests": fake.counters["AddOfflineUserDataJobOperations"], "fake_seconds": None,
                           "audience_size": len(fake.list_members(command[1]))})
        else:
            if platform != "meta":
                fake.stop()
            server.stop()
            pipe.send("stopped")
            return


# ---------------------------------------------------------------------------------------------------------
# The benchmark


def connect(user, platform: str, where: dict):
    """A connection to the fake, made as the Platforms page makes it (credentials tested first)."""
    from django.conf import settings

    from credentials import services
    from platforms.models import Platform
    from sandbox.credentials import DEMO_CREDENTIALS

    settings.FAKE_PLATFORMS_URL = where["url"]
    settings.EGRESS_ALLOW_SANDBOX = True
    if platform == "meta":
        settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "meta": where["meta"]}
        demo = DEMO_CREDENTIALS["meta"]
        config = {"app_id": demo["app_id"], "ad_account_id": demo["ad_account_id"]}
        secrets = {"app_secret": demo["app_secret"], "access_token": demo["access_token"]}
    else:
        settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "google_ads": where["google_ads"]}
        settings.GRPC_PLAINTEXT_LOOPBACK = True
        settings.GOOGLE_OAUTH_TOKEN_URL = where["oauth"]
        config = {k: v for k, v in DEMO_CREDENTIALS["google_ads"].items() if k != "label"}
        secrets = {k: config.pop(k) for k in ("client_secret", "developer_token", "refresh_token")}
        config["customer_id"] = config["customer_id"].replace("-", "")
    return services.connect(owner=user, platform=Platform.objects.get(code=platform), label="Bench", config=config,
                            secrets=secrets)


def sync_storage(sync) -> tuple[dict | None, int]:
    """The bytes of what syncs keep (SyncMember, SyncBatch; the benchmark has one sync) and its synced people."""
    from syncs.models import SyncBatch, SyncMember

    synced = SyncMember.objects.filter(sync=sync).values("person").distinct().count()
    return people.table_bytes(SyncMember, SyncBatch), synced


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", nargs="?", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--platform", choices=("meta", "google_ads"), default="meta")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--change", type=float, default=0.0, metavar="PCT",
                        help="before the second run, re-import with PCT %% of the people replaced by new ones")
    parser.add_argument("--via-import", action="store_true",
                        help="fill the audience (and make the --change re-import) from generated CSV files with "
                             "the import task, instead of from prepared records")
    parser.add_argument("--profile", metavar="PATH", help="write a cProfile of the first run to PATH")
    parser.add_argument("--profile-rerun", action="store_true", help="with --profile: profile the second run")
    parser.add_argument("--database-name", default="bench_sync", help=argparse.SUPPRESS)  # SQLite file (resync's own)
    parser.add_argument("--fill", nargs=2, type=int, default=None, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--import-file", nargs=2, default=None, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)

    if args.fill is not None:
        fill(args.fill[0], args.n, args.seed, args.fill[1])
        return {}
    if args.import_file is not None:
        import_file(int(args.import_file[0]), args.import_file[1])
        return {}

    os.environ.update(people.environment(people.fresh_database(args.db, args.database_name)))
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from audiences.models import Audience, Member, MemberChange, MemberVersion
    from platforms.ratelimit import limiter_for
    from syncs import engine, runs, services
    from syncs.engine import checkpoint, plan

    user = get_user_model().objects.create_user("bench", password="bench-password-123")
    audience = Audience.objects.create(owner=user, name=f"Bench {args.n}", default_country="US")
    seed_seconds = populate(audience, args, skip=0)
    print(f"{'imported' if args.via_import else 'filled'} {audience.member_count:,} members in {seed_seconds:.1f} s "
          f"({args.db})", flush=True)

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    fake_process = ctx.Process(target=serve_fake, args=(child, args.platform), daemon=True)
    fake_process.start()
    where = parent.recv()
    connection = connect(user, args.platform, where)
    sync = services.create_sync(owner=user, audience=audience, connection_id=connection.pk, mode="mirror")

    waited = [0.0]

    def limiter_sleep(seconds):
        waited[0] += seconds
        time.sleep(seconds)

    limiter = limiter_for(args.platform, f"bench-{os.getpid()}", connection.adapter().capabilities.rate_limit,
                          sleep=limiter_sleep)

    # Where the engine's own time goes (bench-only instrumentation of two engine stages).
    phases = {"plan": 0.0, "checkpoint": 0.0}
    for module, name, phase in ((plan, "plan_run", "plan"), (checkpoint, "checkpoint_sent", "checkpoint")):
        function = getattr(module, name)

        def timed(*a, _function=function, _phase=phase, **kw):
            started = time.perf_counter()
            try:
                return _function(*a, **kw)
            finally:
                phases[_phase] += time.perf_counter() - started

        setattr(module, name, timed)

    rss_before = people.peak_rss_mb()
    results = []
    sizes_first = synced_first = None
    second_label = f"{args.change:g} % changed re-run" if args.change else "no-change re-run"
    changed = 0
    for label in ("first run", second_label):
        if label == second_label and args.change:
            changed = int(args.n * args.change / 100)
            seconds = populate(audience, args, skip=changed)
            print(f"re-imported with {changed:,} of {args.n:,} people replaced by new ones in {seconds:.1f} s "
                  f"(changes recorded from generation {audience.changes_recorded_from})", flush=True)
        profiler = None
        if args.profile and len(results) == (1 if args.profile_rerun else 0):
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        adapter = connection.adapter()
        in_adapter = [0.0]
        send = adapter.add_members

        def timed_add(*a, _send=send, _spent=in_adapter, **kw):
            started = time.perf_counter()
            try:
                return _send(*a, **kw)
            finally:
                _spent[0] += time.perf_counter() - started

        adapter.add_members = timed_add
        t0 = time.perf_counter()
        run = runs.start_run(sync=sync)
        run = engine.execute_run(run_id=run.pk, adapter=adapter, limiter=limiter)
        wall = time.perf_counter() - t0
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        results.append({"label": label, "run": run, "wall": wall, "adapter": in_adapter[0], **phases})
        print(f"{label}: {run.status}, {run.sent:,} sent, {run.removed:,} removed in {run.total_batches} batches, "
              f"{wall:.2f} s wall ({run.sent / wall if wall else 0:,.0f} records/s); inside add_members "
              f"{in_adapter[0]:.2f} s, planning {phases['plan']:.2f} s, checkpoints {phases['checkpoint']:.2f} s; "
              f"rate-limiter waits so far {waited[0]:.1f} s; peak RSS {people.peak_rss_mb():.0f} MB", flush=True)
        if run.error_message:
            print(f"  message: {run.error_message}")
        phases.update(dict.fromkeys(phases, 0.0))
        if sizes_first is None:
            sizes_first, synced_first = sync_storage(sync)

    sync.refresh_from_db()
    parent.send(("stats", sync.platform_audience_id))
    stats = parent.recv()
    parent.send("stop")
    parent.recv()
    fake_process.join(timeout=10)
    audience.refresh_from_db()
    sizes_after, synced_after = sync_storage(sync)
    member_sizes = people.table_bytes(Member, MemberVersion, MemberChange)
    print(f"fake {args.platform} received {stats['received']:,} rows in {stats['requests']} add requests"
          + (f" ({stats['fake_seconds']:.2f} s handling them)" if stats["fake_seconds"] is not None else "")
          + f"; the platform audience holds {stats['audience_size']:,} people")
    people.print_sizes("what the sync keeps after the first run", sizes_first, synced_first)
    people.print_sizes("what the sync keeps after the second run", sizes_after, synced_after)
    people.print_sizes("the audience's member tables after both runs", member_sizes, audience.member_count)

    first, second = results
    summary = {
        "benchmark": "sync", "platform": args.platform, "db": args.db, "redis": bool(settings.REDIS_URL),
        "members": args.n, "via_import": args.via_import, "seed_seconds": round(seed_seconds, 2),
        "status": first["run"].status, "sent": first["run"].sent, "batches": first["run"].total_batches,
        "wall_seconds": round(first["wall"], 2),
        "records_per_second": round(first["run"].sent / first["wall"]) if first["wall"] else None,
        "rate_limiter_wait_seconds": round(waited[0], 2), "adapter_add_seconds": round(first["adapter"], 2),
        "plan_seconds": round(first["plan"], 2), "checkpoint_seconds": round(first["checkpoint"], 2),
        "synced_members": synced_first, "bytes_per_synced_member": people.per_member(sizes_first, synced_first),
        "sync_tables": sizes_first,
        "bytes_per_synced_member_after_rerun": people.per_member(sizes_after, synced_after),
        "bytes_per_member": people.per_member(member_sizes, audience.member_count),
        "rerun_status": second["run"].status, "rerun_changed_percent": args.change, "rerun_replaced": changed,
        "rerun_sent": second["run"].sent, "rerun_removed": second["run"].removed,
        "rerun_wall_seconds": round(second["wall"], 2), "rerun_plan_seconds": round(second["plan"], 2),
        "rerun_sent_fraction": round(second["run"].sent / args.n, 5) if args.n else None,
        "rerun_speedup": round(first["wall"] / second["wall"], 1) if second["wall"] else None,
        "fake_received_rows": stats["received"], "fake_handle_seconds": stats["fake_seconds"],
        "fake_audience_size": stats["audience_size"], "peak_rss_mb": round(people.peak_rss_mb()),
        "rss_before_sync_mb": round(rss_before),
    }
    return summary


if __name__ == "__main__":
    result = main()
    if result:
        print(json.dumps(result))
        sys.exit(0 if result["status"] == "succeeded" and result["fake_audience_size"] == result["members"] else 1)
