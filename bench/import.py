"""End-to-end import benchmark: an N-row CSV through the real import code into SQLite or PostgreSQL.

    .venv/bin/python bench/import.py N [--db sqlite|postgres] [--seed 7] [--chunk 10000]

Generates a deterministic synthetic CSV of N rows from the seed (the messy rows of bench/normalize.py:
emails in mixed case with padding, US and UK phones in several formats, accented names, addresses,
dates in several formats, device ids; plus ~1 % exact duplicate rows and ~0.5 % invalid rows), cached under
var/bench/. Then, in a fresh child process (so its peak RSS is the import's alone), it creates a throwaway
database (SQLite file under var/bench/, or database ``bench_import`` on DATABASE_URL's PostgreSQL server,
default postgres://postgres@127.0.0.1:5432/), migrates it, and runs the import exactly as the Celery task
does (audiences.imports.create_import_from_path -> start_import -> run_import: upload copy, sniffing,
streaming parse, prepare_rows, COPY / INSERT OR IGNORE, generation swap, coverage).

As a same-run reference it also times the parse + prepare_rows floor (csv reader + match keys, no database)
over the first min(N, 200,000) rows, and prints import / floor.
Prints a small table, then one JSON line:
{"rows", "db", "seconds", "rows_per_s", "floor_rows_per_s", "ratio_to_floor", "peak_rss_mb", "imported",
 "rejected", "duplicates"}. Target (issue 8): peak RSS under 250 MB, flat as N grows.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DIR = ROOT / "var" / "bench"
HEADER = ["Email", "Phone", "First Name", "Last Name", "City", "State", "Zip", "Country", "Birthday", "Gender",
          "Customer ID", "MAID"]  # fmt: skip
RAW_KEYS = ["email", "phone", "first_name", "last_name", "city", "state", "postal_code", "country", "date_of_birth",
            "gender", "external_id", "maid"]  # fmt: skip
INVALID = [["not-an-email", "12", "", "", "", "", "", "", "31/02/1990", "", "", ""],
           ["=HYPERLINK(\"x\")", "+1 555", "", "", "", "", "", "", "", "", "", ""],
           ["", "", "Ann", "", "", "", "", "", "", "", "", "zz-not-a-uuid"]]  # fmt: skip


def generate(n: int, seed: int) -> Path:
    """Write (or reuse) the deterministic N-row CSV; returns its path."""
    from bench.normalize import Generator

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"import-{n}-{seed}.csv"
    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    gen, rng = Generator(seed), random.Random(seed + 1)
    previous = None
    with open(partial, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for i in range(n):
            roll = rng.random()
            if roll < 0.01 and previous is not None:
                writer.writerow(previous)  # an exact duplicate row
                continue
            if roll < 0.015:
                writer.writerow(INVALID[i % len(INVALID)])
                continue
            raw, _ = gen.row()
            previous = [raw[key] for key in RAW_KEYS]
            writer.writerow(previous)
    partial.rename(path)
    return path


def _database_url(base: str, name: str) -> str:
    return urlsplit(base)._replace(path=f"/{name}").geturl()


def prepare_database(db: str) -> str:
    if db == "sqlite":
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        target = BENCH_DIR / "bench_import.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{target}"
    import psycopg

    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        base = "postgres://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(_database_url(base, "postgres"), autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "bench_import" WITH (FORCE)')
        conn.execute('CREATE DATABASE "bench_import"')
    return _database_url(base, "bench_import")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(path: Path, chunk: int) -> dict:
    """Runs in the child process: migrate, import through the real code, report."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "activation_manager.settings")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from audiences import imports
    from audiences.models import Audience
    from platforms import matchkeys

    call_command("migrate", verbosity=0)
    imports.CHUNK_ROWS = chunk
    owner = get_user_model().objects.create_user("bench")
    audience = Audience.objects.create(owner=owner, name="bench", default_country="US")
    rss_before = peak_rss_mb()

    started = time.perf_counter()
    job = imports.create_import_from_path(owner=owner, audience=audience, path=path)
    imports.start_import(job, enqueue=False)
    job = imports.run_import(job.pk)
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    assert job.status == "succeeded", job.error_message

    # Same-run reference: parse + prepare_rows only, no database, first rows of the same file.
    floor_rows = min(job.rows_total, 200_000)
    keys = [job.column_mapping.get(str(i)) or None for i in range(len(job.headers))]
    from bench.normalize import clear_caches

    clear_caches()  # the import warmed them; the floor starts cold too
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        t0 = time.perf_counter()
        done = 0
        while done < floor_rows:
            rows = [row for _, row in zip(range(min(chunk, floor_rows - done)), reader, strict=False)]
            if not rows:
                break
            for record in matchkeys.prepare_rows(rows, keys, default_region="US"):
                if matchkeys.is_identifiable(record.stored):
                    matchkeys.fingerprint(record.stored)
            done += len(rows)
        floor_seconds = time.perf_counter() - t0
    return {
        "rows": job.rows_total, "seconds": round(seconds, 2), "rows_per_s": round(job.rows_total / seconds),
        "floor_rows_per_s": round(done / floor_seconds) if floor_seconds else None,
        "peak_rss_mb": round(peak, 1), "rss_before_import_mb": round(rss_before, 1),
        "imported": job.rows_imported, "rejected": job.rows_rejected, "duplicates": job.rows_duplicate,
        "bytes": job.size_bytes,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(child(Path(args.child), args.chunk)))
        return

    t0 = time.perf_counter()
    path = generate(args.n, args.seed)
    gen_seconds = time.perf_counter() - t0
    env = dict(os.environ, DATABASE_URL=prepare_database(args.db), UPLOAD_DIR=str(BENCH_DIR / "uploads"),
               CELERY_TASK_ALWAYS_EAGER="false")
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, __file__, str(args.n), "--db", args.db, "--chunk", str(args.chunk), "--child", str(path)],
        env=env, cwd=ROOT, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-4000:])
        raise SystemExit(result.returncode)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    ratio = round(figures["rows_per_s"] / figures["floor_rows_per_s"], 3) if figures["floor_rows_per_s"] else None
    print(f"file: {path.name} ({figures['bytes'] / 1e6:.0f} MB, generated/reused in {gen_seconds:.1f} s)")
    print(f"{'db':<10}{'rows':>12}{'seconds':>10}{'rows/s':>10}{'floor/s':>10}{'ratio':>8}{'peak RSS':>11}")
    print(f"{args.db:<10}{figures['rows']:>12,}{figures['seconds']:>10.1f}{figures['rows_per_s']:>10,}"
          f"{figures['floor_rows_per_s'] or 0:>10,}{ratio or 0:>8.2f}{figures['peak_rss_mb']:>8.0f} MB")
    print(f"imported {figures['imported']:,}, rejected {figures['rejected']:,}, duplicates {figures['duplicates']:,}")
    print(json.dumps({
        "rows": figures["rows"], "db": args.db, "seconds": figures["seconds"], "rows_per_s": figures["rows_per_s"],
        "floor_rows_per_s": figures["floor_rows_per_s"], "ratio_to_floor": ratio,
        "peak_rss_mb": figures["peak_rss_mb"], "imported": figures["imported"], "rejected": figures["rejected"],
        "duplicates": figures["duplicates"],
    }))


if __name__ == "__main__":
    main()
