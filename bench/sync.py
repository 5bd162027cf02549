"""Sync benchmark: N members through the real sync engine and the real Meta (or Google Ads) adapter to its fake.

    .venv/bin/python bench/sync.py [N] [--db sqlite|postgres] [--platform meta|google_ads] [--profile PATH]

1. A fresh database (SQLite file under var/, or the PostgreSQL database ``am_bench_sync`` on DATABASE_URL's
   server with ``--db postgres``), migrated.
2. Seeding (in a child process, so its memory does not count): N synthetic people (email, phone, first and
   last name, postal code, country) through ``matchkeys.prepare_records`` into Members (COPY on PostgreSQL,
   bulk_create on SQLite). Timed separately, not part of the sync figures. With ``--via-import`` the people
   are written to a CSV file and go through the real import task instead (slower: about 2 minutes per
   million), and so does the ``--change`` re-import (a second file with PCT % of the people replaced).
3. The fake Meta Graph API on a loopback HTTP server (or, with ``--platform google_ads``, the gRPC Google Ads fake
   and the fake OAuth endpoint) in another process, so the fake's work does not compete with the engine for
   the GIL, as a real platform would not.
4. One sync run, in this process: ``audiences.sync.execute_run`` with the Meta adapter built from the
   connection (facebook-business SDK, 10,000-row requests with sessions), the real rate limiter (Redis when
   REDIS_URL is set, else process-local; Meta's budget is 60 requests a minute with a burst of 60) and the
   real retry policy. Then a second run with nothing changed (the incremental no-op).

Prints records/s, wall time, time spent waiting on the rate limiter, peak RSS of the sync process, what the
fake received, and a final JSON line. Target: 1,000,000 members in under 60 s wall.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "am_bench_sync"
CHUNK = 50_000


def configure(db: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "activation_manager.settings"
    os.environ.setdefault("CREDENTIALS_KEYS", "ZmFrZS10ZXN0LWtleS0xLWZvci1hY3RpdmF0aW9uLW0=")
    os.environ["DEMO_MODE"] = "false"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if db == "postgres":
        base = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
        os.environ["DATABASE_URL"] = f"{base}/{BENCH_DB}"
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{ROOT / 'var' / 'bench-sync.sqlite3'}"


def fresh_database(db: str) -> None:
    if db == "postgres":
        import psycopg

        base = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
            conn.execute(f"CREATE DATABASE {BENCH_DB}")
    else:
        (ROOT / "var").mkdir(exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{ROOT / 'var' / 'bench-sync.sqlite3'}{suffix}").unlink(missing_ok=True)


# Distinct, valid US numbers: 8,000,000 per area code.
AREAS = ("212", "415", "312", "617", "206", "303", "404", "512", "702", "808")


def synthetic_rows(start: int, count: int) -> list[dict]:
    return [
        {"email": f"Person.{i}@Example.com ", "phone": phone(i), "first_name": f"Ann{i % 997}",
         "last_name": f"Smith{i % 1009}", "postal_code": f"{10000 + i % 89999}", "country": "US"}
        for i in range(start, start + count)
    ]


def phone(i: int) -> str:
    return f"({AREAS[i // 8_000_000 % len(AREAS)]}) {200 + i // 10_000 % 800}-{i % 10_000:04d}"


def seed(n: int, audience_id: int) -> None:
    """Child process: N members into the audience (generation 1)."""
    import django

    django.setup()
    from django.db import connection, transaction

    from audiences.models import Member
    from platforms.matchkeys import fingerprint, prepare_records

    postgres = connection.vendor == "postgresql"
    for start in range(0, n, CHUNK):
        records = prepare_records(synthetic_rows(start, min(CHUNK, n - start)), default_region="US")
        rows = [(fingerprint(r.stored), r.stored) for r in records]
        with transaction.atomic():
            if postgres:
                with connection.cursor() as cursor, cursor.cursor.copy(
                    "COPY audiences_member (audience_id, generation, fingerprint, keys) FROM STDIN"
                ) as copy:
                    for fp, stored in rows:
                        copy.write_row((audience_id, 1, fp, json.dumps(stored, separators=(",", ":"))))
            else:
                Member.objects.bulk_create(
                    [Member(audience_id=audience_id, generation=1, fingerprint=fp, keys=stored) for fp, stored in rows],
                    batch_size=5000,
                )
    if postgres:
        # What autovacuum does soon after a large insert (PostgreSQL >= 13): statistics and the visibility map,
        # so the planner's index-only scans need no heap fetches.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE audiences_member")


IMPORT_COLUMNS = ("email", "phone", "first_name", "last_name", "postal_code", "country")


def write_csv(path: Path, n: int, replaced: int = 0) -> Path:
    """The audience as a customer file: people 0..n-1, the first ``replaced`` of them swapped for new people."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(IMPORT_COLUMNS)
        for start, count in ((n, replaced), (replaced, n - replaced)):
            for chunk in range(start, start + count, CHUNK):
                for row in synthetic_rows(chunk, min(CHUNK, start + count - chunk)):
                    writer.writerow([row[column].strip() for column in IMPORT_COLUMNS])
    return path


def import_file(path: str, audience_id: int) -> None:
    """Child process: the file through the real import task (sniff, map, stream, COPY, record changes, swap)."""
    import django

    django.setup()
    from audiences import imports
    from audiences.models import Audience

    audience = Audience.objects.get(pk=audience_id)
    job = imports.create_import_from_path(owner=audience.owner, audience=audience, path=path)
    imports.start_import(job, {str(i): key for i, key in enumerate(IMPORT_COLUMNS)}, enqueue=False)
    job = imports.run_import(job.pk)
    if job.status != "succeeded":
        raise SystemExit(f"import failed: {job.error_message}")


def serve_fake(pipe, platform: str) -> None:
    """Child process: the platform's fake on loopback; answers ("stats", audience id) and "stop" on the pipe."""
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
                # alive after each request keeps it out of later passes (acyclic; refcounting still frees it).
                gc.freeze()
                handled[0] += time.perf_counter() - started
                if os.environ.get("BENCH_FAKE_TRACE"):
                    print(f"    fake: {request.method} {time.perf_counter() - started:.3f} s", flush=True)

        fake.handle = timed_handle
        server = FakeServer([fake]).start()
        pipe.send({"meta": f"{server.url}/meta"})
    else:
        from sandbox.google_ads import FakeGoogleAdsServer
        from sandbox.google_oauth import FakeGoogleOAuth

        server = FakeServer([FakeGoogleOAuth()]).start()
        fake = FakeGoogleAdsServer()
        fake.record_requests = False
        fake.start()
        pipe.send({"google_ads": fake.address, "oauth": f"{server.url}/google-oauth/token"})
    while True:
        command = pipe.recv()
        if isinstance(command, tuple) and command[0] == "stats":
            audience_id = command[1]
            if platform == "meta":
                with fake.lock:
                    pipe.send({"received": fake.received_rows["add"], "requests": fake.add_requests,
                               "fake_seconds": round(handled[0], 2),
                               "audience_size": len(fake.audience_members(audience_id))})
            else:
                fake.finish_jobs()  # Google processes offline user data jobs later; count what they added
                pipe.send({"received": fake.counters["operations"],
                           "requests": fake.counters["AddOfflineUserDataJobOperations"],
                           "audience_size": len(fake.list_members(audience_id))})
        else:
            if platform != "meta":
                fake.stop()
            server.stop()
            pipe.send("stopped")
            return


def reimport_with_changes(audience, n: int, percent: float) -> int:
    """A re-import as the importer leaves it: generation + 1 holding the same members except the first
    ``percent`` %, which are replaced by as many new people, with the changes recorded and the generation
    swapped in by the importer's own functions. Returns how many were replaced."""
    from django.db import connection, transaction

    from audiences.housekeeping import vacuum_analyze
    from audiences.imports import CHANGES_MAX_SHARE, record_changes, swap_generation
    from audiences.models import Member
    from platforms.matchkeys import fingerprint, prepare_records

    changed = int(n * percent / 100)
    old, new = audience.generation, audience.generation + 1
    dropped = [fingerprint(r.stored) for r in prepare_records(synthetic_rows(0, changed), default_region="US")]
    added = [Member(audience=audience, generation=new, fingerprint=fingerprint(r.stored), keys=r.stored)
             for r in prepare_records(synthetic_rows(n, changed), default_region="US")]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO audiences_member (audience_id, generation, fingerprint, keys) "
                "SELECT audience_id, %s, fingerprint, keys FROM audiences_member WHERE audience_id = %s "
                "AND generation = %s", [new, audience.pk, old])
        for start in range(0, len(dropped), 500):
            Member.objects.filter(audience=audience, generation=new,
                                  fingerprint__in=dropped[start:start + 500]).delete()
        Member.objects.bulk_create(added, batch_size=5000)
    started = time.perf_counter()
    vacuum_analyze(Member)  # as the importer's last steps do
    vacuumed = time.perf_counter()
    recorded = record_changes(audience.pk, new, old, limit=int(CHANGES_MAX_SHARE * n))
    outcome = "recorded" if recorded else "too many to record"
    print(f"  the import's last steps: VACUUM {vacuumed - started:.2f} s, change recording "
          f"{time.perf_counter() - vacuumed:.2f} s ({outcome})")
    swap_generation(audience.pk, new, old, recorded=recorded, member_count=n)
    audience.refresh_from_db()
    return changed


def run_import_child(path: Path, audience, args) -> None:
    subprocess.run([sys.executable, __file__, str(args.n), "--db", args.db, "--import-only", str(path),
                    str(audience.pk)], check=True, env=os.environ.copy())


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", nargs="?", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--platform", choices=("meta", "google_ads"), default="meta")
    parser.add_argument("--profile", metavar="PATH", help="write a cProfile of the first run to PATH")
    parser.add_argument("--profile-rerun", action="store_true", help="with --profile: profile the second run")
    parser.add_argument("--change", type=float, default=0.0, metavar="PCT",
                        help="before the second run, replace PCT %% of the members by new people (a re-import)")
    parser.add_argument("--via-import", action="store_true",
                        help="fill the audience (and make the --change re-import) with the real import task from "
                             "generated CSV files, instead of seeding members directly (slower)")
    parser.add_argument("--seed-only", type=int, default=None, help=argparse.SUPPRESS)  # internal: child process
    parser.add_argument("--import-only", nargs=2, default=None, help=argparse.SUPPRESS)  # internal: child process
    args = parser.parse_args(argv)
    configure(args.db)

    if args.seed_only is not None:
        seed(args.n, args.seed_only)
        return 0
    if args.import_only is not None:
        import_file(args.import_only[0], int(args.import_only[1]))
        return 0

    fresh_database(args.db)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from audiences.models import Audience
    from credentials.models import Connection
    from platforms.models import Platform
    from platforms.ratelimit import limiter_for
    from sandbox.credentials import DEMO_CREDENTIALS
    from syncs import engine
    from syncs.models import Sync, SyncRun

    user = get_user_model().objects.create_user("bench", password="bench-password-123")
    if args.via_import:
        audience = Audience.objects.create(owner=user, name=f"Bench {args.n}", default_country="US")
        path = write_csv(ROOT / "var" / "bench" / f"sync-{args.n}.csv", args.n)
        t0 = time.perf_counter()
        run_import_child(path, audience, args)
    else:
        audience = Audience.objects.create(owner=user, name=f"Bench {args.n}", default_country="US",
                                           status="ready", generation=1, member_count=args.n)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, str(args.n), "--db", args.db, "--seed-only", str(audience.pk)],
                       check=True, env=os.environ.copy())
    seed_seconds = time.perf_counter() - t0
    audience.refresh_from_db()
    print(f"{'imported' if args.via_import else 'seeded'} {audience.member_count:,} members in {seed_seconds:.1f} s "
          f"({args.db})", flush=True)

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    fake_process = ctx.Process(target=serve_fake, args=(child, args.platform), daemon=True)
    fake_process.start()
    where = parent.recv()
    if args.platform == "meta":
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
    connection = Connection.objects.create(
        owner=user, platform=Platform.objects.get(code=args.platform), label="Bench", config=config, secrets=secrets,
    )
    sync = Sync.objects.create(owner=user, audience=audience, connection=connection, mode="mirror")

    waited = [0.0]

    def limiter_sleep(seconds):
        waited[0] += seconds
        time.sleep(seconds)

    adapter = connection.adapter()
    limiter = limiter_for(args.platform, f"bench-{os.getpid()}", adapter.capabilities.rate_limit, sleep=limiter_sleep)

    # Where the engine's own time goes (bench-only instrumentation of two engine steps).
    phases = {"_plan": 0.0, "_checkpoint_sent": 0.0}
    for name in phases:
        method = getattr(engine._Engine, name)

        def timed(self, *a, _method=method, _name=name, **kw):
            started = time.perf_counter()
            try:
                return _method(self, *a, **kw)
            finally:
                phases[_name] += time.perf_counter() - started

        setattr(engine._Engine, name, timed)

    rss_before = rss_mb()
    results = []
    second_label = f"{args.change:g} % changed re-run" if args.change else "no-change re-run"
    for label in ("first run", second_label):
        if label == second_label and args.change and args.via_import:
            changed = int(args.n * args.change / 100)
            path = write_csv(ROOT / "var" / "bench" / f"sync-{args.n}-changed.csv", args.n, changed)
            started = time.perf_counter()
            run_import_child(path, audience, args)
            audience.refresh_from_db()
            print(f"re-imported with {changed:,} of {args.n:,} members replaced by new people, by the import task, "
                  f"in {time.perf_counter() - started:.1f} s (changes recorded: "
                  f"{audience.changes_base_generation is not None})", flush=True)
        elif label == second_label and args.change:
            changed = reimport_with_changes(audience, args.n, args.change)
            print(f"re-imported with {changed:,} of {args.n:,} members replaced by new people", flush=True)
        run = SyncRun.objects.create(sync=sync)
        profiler = None
        if args.profile and len(results) == (1 if args.profile_rerun else 0):
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        run_adapter = connection.adapter()
        in_adapter = [0.0]
        send = run_adapter.add_members

        def timed_add(*a, _send=send, _spent=in_adapter, **kw):
            started = time.perf_counter()
            try:
                return _send(*a, **kw)
            finally:
                _spent[0] += time.perf_counter() - started

        run_adapter.add_members = timed_add
        t0 = time.perf_counter()
        run = engine.execute_run(run_id=run.pk, adapter=run_adapter, limiter=limiter)
        wall = time.perf_counter() - t0
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        results.append((label, run, wall, in_adapter[0], dict(phases)))
        print(f"  planning {phases['_plan']:.2f} s, checkpoints {phases['_checkpoint_sent']:.2f} s", flush=True)
        phases.update(dict.fromkeys(phases, 0.0))
        print(f"{label}: {run.status}, {run.sent:,} sent in {run.total_batches} batches, {wall:.2f} s wall, "
              f"{run.sent / wall if wall else 0:,.0f} records/s; rate-limiter waits so far {waited[0]:.1f} s; "
              f"peak RSS {rss_mb():.0f} MB", flush=True)
        print(f"  inside the adapter's add_members (SDK encoding, HTTP, the fake's work): {in_adapter[0]:.2f} s; "
              f"the rest (planning, reads, checkpoints, status): {wall - in_adapter[0]:.2f} s", flush=True)
        if run.error_message:
            print(f"  message: {run.error_message}")

    sync.refresh_from_db()
    parent.send(("stats", sync.platform_audience_id))
    stats = parent.recv()
    parent.send("stop")
    parent.recv()
    fake_process.join(timeout=10)
    on_platform = stats["audience_size"]
    if stats.get("fake_seconds") is not None:
        print(f"the fake spent {stats['fake_seconds']:.2f} s handling requests (decoding the form, validating "
              "and storing rows), both runs")
    print(f"fake {args.platform} received {stats['received']} rows in {stats['requests']} requests; "
          f"audience holds {on_platform:,} people")
    first, second = results[0][1], results[1][1]
    summary = {
        "benchmark": "sync",
        "platform": args.platform,
        "db": args.db,
        "redis": bool(settings.REDIS_URL),
        "members": args.n,
        "via_import": args.via_import,
        "seed_seconds": round(seed_seconds, 2),
        "status": first.status,
        "sent": first.sent,
        "batches": first.total_batches,
        "wall_seconds": round(results[0][2], 2),
        "records_per_second": round(first.sent / results[0][2]) if results[0][2] else None,
        "rate_limiter_wait_seconds": round(waited[0], 2),
        "adapter_add_seconds": round(results[0][3], 2),
        "plan_seconds": round(results[0][4]["_plan"], 2),
        "checkpoint_seconds": round(results[0][4]["_checkpoint_sent"], 2),
        "rerun_plan_seconds": round(results[1][4]["_plan"], 2),
        "rerun_status": second.status,
        "rerun_sent": second.sent,
        "rerun_wall_seconds": round(results[1][2], 2),
        "rerun_changed_percent": args.change,
        "rerun_removed": second.removed,
        "rerun_sent_fraction": round(second.sent / args.n, 5) if args.n else None,
        "rerun_speedup": round(results[0][2] / results[1][2], 1) if results[1][2] else None,
        "fake_received_rows": stats["received"],
        "fake_handle_seconds": stats.get("fake_seconds"),
        "fake_audience_size": on_platform,
        "peak_rss_mb": round(rss_mb()),
        "rss_before_sync_mb": round(rss_before),
        "target_met": first.status == "succeeded" and args.n >= 1_000_000 and results[0][2] < 60,
    }
    print(json.dumps(summary))
    return 0 if first.status == "succeeded" and on_platform == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
