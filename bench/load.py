"""Load benchmark: dashboard, audience list and run pages under 50 concurrent users.

    .venv/bin/python bench/load.py [--users 50] [--audiences 1000] [--runs 10000] [--seconds 20]

Builds a throwaway PostgreSQL database (bench_load on DATABASE_URL's server, default
postgres://postgres@127.0.0.1:5432/), seeds it (users, connections, audiences, syncs, runs), serves
the app with gunicorn on loopback, then has N simulated users (one signed-in session each) request
their dashboard, audience list and one of their run pages in a loop. Prints p50 / p95 / max latency
and the error count per page, then one JSON line. Target: p95 under 100 ms, 0 errors.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return parts._replace(path=f"/{name}").geturl()


def recreate_database(base_url: str, name: str) -> None:
    import psycopg

    admin = _database_url(base_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def seed(users: int, audiences: int, runs: int) -> list[dict]:
    """Create the data; return per user: session cookie value and the ids of their runs."""
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from audiences.models import Audience
    from credentials.models import Connection
    from platforms.models import Platform
    from syncs.models import Sync, SyncRun

    rng = random.Random(20261125)
    platforms = list(Platform.objects.all())
    user_model = get_user_model()
    people = [user_model(username=f"bench{i}") for i in range(users)]
    for person in people:
        person.set_unusable_password()
    user_model.objects.bulk_create(people)
    people = list(user_model.objects.filter(username__startswith="bench").order_by("pk"))

    connections = Connection.objects.bulk_create(
        Connection(owner=p, platform=platforms[i % len(platforms)], label=f"Account {i}", config={},
                   secrets={"access_token": f"bench-token-{i}"}, status="active")
        for i, p in enumerate(people)
    )
    audience_rows = Audience.objects.bulk_create(
        Audience(owner=people[i % users], name=f"Audience {i}", default_country="US",
                 status="ready", member_count=rng.randint(1_000, 2_000_000))
        for i in range(audiences)
    )
    syncs = Sync.objects.bulk_create(
        Sync(owner=a.owner, audience=a, connection=connections[people.index(a.owner)]) for a in audience_rows
    )
    now = timezone.now()
    statuses = ["succeeded"] * 8 + ["partial", "failed"]
    SyncRun.objects.bulk_create(
        (
            SyncRun(sync=syncs[i % len(syncs)], status=rng.choice(statuses), sent=rng.randint(0, 100_000),
                    processed=100_000, match_rate=rng.random(), total_batches=10, done_batches=10,
                    finished_at=now)
            for i in range(runs)
        ),
        batch_size=2_000,
    )
    plans = []
    for person in people:
        session = SessionStore()
        session["_auth_user_id"] = str(person.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = person.get_session_auth_hash()
        session.create()
        run_ids = list(SyncRun.objects.filter(sync__owner=person).values_list("pk", flat=True)[:50])
        plans.append({"session": session.session_key, "runs": run_ids})
    return plans


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--audiences", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean pause of a simulated user between pages, seconds (uniform 0.5x..1.5x; 0 = hammer)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="gunicorn worker processes (default: one per core; more only queue on the CPU)")
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    if not base.startswith("postgres"):
        sys.exit("bench/load.py measures PostgreSQL: set DATABASE_URL to a postgres:// URL")
    db_url = _database_url(base, "bench_load")
    recreate_database(base, "bench_load")

    env = dict(os.environ, DATABASE_URL=db_url, DJANGO_SETTINGS_MODULE="activation_manager.settings",
               DEBUG="false", DEMO_MODE="false", ALLOWED_HOSTS="127.0.0.1,localhost")
    env.setdefault("SECRET_KEY", "bench-load-not-secret")
    if "CREDENTIALS_KEYS" not in env:
        from cryptography.fernet import Fernet

        env["CREDENTIALS_KEYS"] = Fernet.generate_key().decode()
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from django.conf import settings
    from django.urls import reverse

    started = time.perf_counter()
    plans = seed(args.users, args.audiences, args.runs)
    print(f"seeded {args.users} users, {args.audiences} audiences, {args.runs} runs "
          f"in {time.perf_counter() - started:.1f} s", flush=True)

    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "activation_manager.wsgi", "-b", f"127.0.0.1:{args.port}",
         "-w", str(args.workers), "--preload", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    try:
        run_load(args, plans, settings, reverse)
    finally:
        server.terminate()
        server.wait(timeout=10)


def run_load(args, plans, settings, reverse) -> None:
    import requests

    url = f"http://127.0.0.1:{args.port}"
    for _ in range(300):
        try:
            if requests.get(f"{url}/healthz", timeout=5).ok:
                break
        except requests.RequestException:
            time.sleep(0.1)
    else:
        sys.exit("gunicorn did not answer /healthz")

    pages = {
        "dashboard": lambda plan: reverse("dashboard"),
        "audience_list": lambda plan: reverse("audience_list"),
        "run_detail": lambda plan: reverse("sync_run_detail", args=[random.choice(plan["runs"])]),
    }
    timings: dict[str, list[float]] = {name: [] for name in pages}
    errors: dict[str, int] = {name: 0 for name in pages}
    lock = threading.Lock()
    deadline = time.perf_counter() + args.seconds

    def user_loop(plan):
        rng = random.Random(plan["session"])
        # Users arrive spread over one think time, not all in the same millisecond.
        time.sleep(rng.uniform(0, args.think))
        session = requests.Session()
        session.cookies.set(settings.SESSION_COOKIE_NAME, plan["session"])
        while time.perf_counter() < deadline:
            for name, path in pages.items():
                t0 = time.perf_counter()
                try:
                    ok = session.get(url + path(plan), timeout=10, allow_redirects=False).status_code == 200
                except requests.RequestException:
                    ok = False
                elapsed = (time.perf_counter() - t0) * 1000
                with lock:
                    timings[name].append(elapsed)
                    errors[name] += 0 if ok else 1
                if args.think:
                    time.sleep(rng.uniform(0.5, 1.5) * args.think)

    # Warm every worker once (first requests import the platform SDKs), then measure.
    warmup = requests.Session()
    warmup.cookies.set(settings.SESSION_COOKIE_NAME, plans[0]["session"])
    for _ in range(args.workers * 3):
        for path in pages.values():
            warmup.get(url + path(plans[0]), timeout=30)
    deadline = time.perf_counter() + args.seconds
    with ThreadPoolExecutor(max_workers=args.users) as pool:
        list(pool.map(user_loop, plans))

    print(f"{'page':<15}{'requests':>10}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{'errors':>8}")
    result = {"users": args.users, "audiences": args.audiences, "runs": args.runs, "think_s": args.think,
              "seconds": args.seconds}
    for name, values in timings.items():
        p50, p95 = statistics.median(values) if values else float("nan"), percentile(values, 0.95)
        print(f"{name:<15}{len(values):>10}{p50:>10.1f}{p95:>10.1f}{max(values or [0]):>10.1f}{errors[name]:>8}")
        result[name] = {"requests": len(values), "p50_ms": round(p50, 1), "p95_ms": round(p95, 1),
                        "errors": errors[name]}
    all_values = [v for values in timings.values() for v in values]
    result["p95_ms"] = round(percentile(all_values, 0.95), 1)
    result["errors"] = sum(errors.values())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
