"""What the import, sync and re-sync benchmarks share: the deterministic 12-key people, their CSV files, the
throwaway databases, and the storage figures read from PostgreSQL.

People come from ``bench.normalize.Generator`` (a seed gives the same people in the same order every time): the
twelve columns of a customer file (email, phone, first and last name, city, state, ZIP, country, birthday, gender,
customer id, mobile advertiser id), with the mess real files have. Person i is the i-th row the generator gives;
the customer id (``CRM-<i>``) makes every person distinct, and is the audience's person key.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
# Generated files and databases (BENCH_DIR: elsewhere, e.g. a test's temporary folder); the migrated SQLite
# template is always cached in var/bench.
BENCH_DIR = Path(os.environ.get("BENCH_DIR") or ROOT / "var" / "bench")
TEMPLATE_DIR = ROOT / "var" / "bench"
HEADER = ["Email", "Phone", "First Name", "Last Name", "City", "State", "Zip", "Country", "Birthday", "Gender",
          "Customer ID", "MAID"]  # fmt: skip
RAW_KEYS = ["email", "phone", "first_name", "last_name", "city", "state", "postal_code", "country", "date_of_birth",
            "gender", "external_id", "maid"]  # fmt: skip
MAPPING = {str(i): key for i, key in enumerate(RAW_KEYS)}
INVALID = [["not-an-email", "12", "", "", "", "", "", "", "31/02/1990", "", "", ""],
           ["=HYPERLINK(\"x\")", "+1 555", "", "", "", "", "", "", "", "", "", ""],
           ["", "", "Ann", "", "", "", "", "", "", "", "", "zz-not-a-uuid"]]  # fmt: skip
CHUNK = 10_000
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/bench"


def people(seed: int, *, skip: int = 0) -> Iterator[list[str]]:
    """The people of ``seed`` as CSV rows (RAW_KEYS order), from person ``skip`` on, without end."""
    from bench.normalize import Generator

    gen = Generator(seed)
    for _ in range(skip):
        gen.row()
    while True:
        raw, _ = gen.row()
        yield [raw[key] for key in RAW_KEYS]


def write_csv(path: Path, n: int, seed: int, *, skip: int = 0, messy: bool = False) -> Path:
    """Write (or reuse) a customer file of persons ``skip`` .. ``skip + n - 1``. ``messy``: as an import sees
    files, about 1 % of the rows repeat the row before them exactly and 0.5 % are invalid (they take the place
    of a person, so the file still has n rows)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    rng = random.Random(seed + 1)
    source = people(seed, skip=skip)
    previous = None
    with open(partial, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for i in range(n):
            if messy:
                roll = rng.random()
                if roll < 0.01 and previous is not None:
                    writer.writerow(previous)
                    continue
                if roll < 0.015:
                    writer.writerow(INVALID[i % len(INVALID)])
                    continue
            previous = next(source)
            writer.writerow(previous)
    partial.rename(path)
    return path


def prepared(n: int, seed: int, *, skip: int = 0, region: str = "US") -> Iterator[dict]:
    """The stored records (platforms.matchkeys) of persons ``skip`` .. ``skip + n - 1``, chunk by chunk."""
    from platforms import matchkeys

    source = people(seed, skip=skip)
    for start in range(0, n, CHUNK):
        rows = [next(source) for _ in range(min(CHUNK, n - start))]
        for record in matchkeys.prepare_rows(rows, RAW_KEYS, default_region=region):
            yield record.stored


# ---------------------------------------------------------------------------------------------------------
# Databases


def _with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def postgres_url() -> str:
    """The benchmark's PostgreSQL database (dropped and created by each run): BENCH_DATABASE_URL, default
    postgres://postgres@127.0.0.1:5432/bench."""
    return os.environ.get("BENCH_DATABASE_URL") or DEFAULT_POSTGRES


def _migrate(url: str) -> None:
    env = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE="activation_manager.settings")
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], env=env, cwd=ROOT, check=True)


def _migrations_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def fresh_database(db: str, name: str) -> str:
    """A new, migrated database; returns its DATABASE_URL. PostgreSQL: ``postgres_url()``, dropped and created.
    SQLite: var/bench/<name>.sqlite3, copied from a migrated template kept while the migrations are unchanged
    (migrating takes longer than a small benchmark)."""
    if db == "postgres":
        import psycopg

        url = postgres_url()
        target = urlsplit(url).path.lstrip("/")
        with psycopg.connect(_with_database(url, "postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{target}"')
        _migrate(url)
        return url
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    TEMPLATE_DIR.mkdir(parents=True, exist_ok=True)
    template = TEMPLATE_DIR / f"migrated-{_migrations_digest()}.sqlite3"
    if not template.exists():
        for old in TEMPLATE_DIR.glob("migrated-*.sqlite3"):
            if old != template:
                old.unlink(missing_ok=True)
        partial = template.with_suffix(f".{os.getpid()}.partial")  # benchmarks may start side by side
        _migrate(f"sqlite:///{partial}")
        partial.rename(template)
    target = BENCH_DIR / f"{name}.sqlite3"
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def environment(database_url: str) -> dict:
    """The environment of a benchmark's processes: its database, its own upload and broker folders (a run queued
    by syncs.runs lands in a queue nobody reads; the benchmark runs it in-process), DEBUG off as in a deployed
    worker (Django's debug cursor keeps every query), quiet logs."""
    return dict(
        os.environ, DJANGO_SETTINGS_MODULE="activation_manager.settings", DATABASE_URL=database_url,
        UPLOAD_DIR=str(BENCH_DIR / "uploads"), CELERY_BROKER_DIR=str(BENCH_DIR / "broker"),
        CELERY_TASK_ALWAYS_EAGER="false", DEMO_MODE="false", DEBUG="false",
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"), REDIS_URL="", CREDENTIALS_KEYS=os.environ.get(
            "CREDENTIALS_KEYS", "ZmFrZS10ZXN0LWtleS0xLWZvci1hY3RpdmF0aW9uLW0="),
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------------------------------------------------
# Storage figures (PostgreSQL; None on SQLite)


def table_bytes(*models) -> dict[str, dict[str, int]] | None:
    """{table: {"heap", "indexes", "total"}} of each model's table (total: pg_total_relation_size, TOAST
    included). None on SQLite."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    sizes = {}
    with connection.cursor() as cursor:
        for model in models:
            table = model._meta.db_table
            cursor.execute("SELECT pg_relation_size(%s), pg_indexes_size(%s), pg_total_relation_size(%s)",
                           [table, table, table])
            heap, indexes, total = cursor.fetchone()
            sizes[table] = {"heap": heap, "indexes": indexes, "total": total}
    return sizes


def per_member(sizes: dict[str, dict[str, int]] | None, members: int) -> float | None:
    if sizes is None or not members:
        return None
    return round(sum(s["total"] for s in sizes.values()) / members, 1)


def print_sizes(title: str, sizes: dict[str, dict[str, int]] | None, members: int) -> None:
    if sizes is None:
        print(f"{title}: (sizes are measured on PostgreSQL only)")
        return
    print(f"{title}, per member of {members:,}:")
    print(f"  {'table':<28}{'heap':>10}{'indexes':>10}{'total':>10}{'B/member':>10}")
    for table, s in sizes.items():
        print(f"  {table:<28}{s['heap'] / 1e6:>8.1f}MB{s['indexes'] / 1e6:>8.1f}MB{s['total'] / 1e6:>8.1f}MB"
              f"{s['total'] / members if members else 0:>10.1f}")
    print(f"  {'all':<58}{per_member(sizes, members) or 0:>10.1f}")
