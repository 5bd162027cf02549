"""End-to-end import benchmark: an N-row customer file through the real import task into PostgreSQL or SQLite.

    .venv/bin/python bench/import.py N [--db postgres|sqlite] [--seed 7] [--floor-rows 1000000]

1. A deterministic N-row CSV of the twelve columns (bench/people.py: the messy rows of bench/normalize.py, plus
   about 1 % exact duplicate rows and 0.5 % invalid rows), cached under var/bench/.
2. A fresh, migrated database (PostgreSQL: BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/bench,
   dropped and created; SQLite: a file under var/bench/).
3. In a child process (so its peak RSS is the import's alone, migrations excluded), the import exactly as a
   marketer's upload goes: ``audiences.imports.create_import_from_path`` -> ``start_import`` (the file's own
   mapping, person key: the customer id) -> the Celery task's body ``audiences.tasks.import_audience`` (sniffing,
   streaming parse, prepare_rows, person ids and merging, COPY into the staging table, apply, VACUUM, coverage).
4. The parse + prepare floor on the same file, once before and once after the import, each in a process of its
   own: csv.reader + ``matchkeys.prepare_rows`` + the person id of each identifiable record, no database, over
   the first ``--floor-rows`` rows (caches cold). The import is compared with the mean of the two.
5. On PostgreSQL, the bytes the audience's members take: pg_total_relation_size (heap, indexes, TOAST) of the
   member tables (Member, MemberVersion, MemberChange) per member.

Prints a small table, then one JSON line: {"benchmark", "rows", "db", "seconds", "rows_per_s", "floor_rows_per_s",
"floor_rates", "ratio_to_floor", "peak_rss_mb", "imported", "rejected", "duplicates", "members", "bytes_per_member",
"member_tables"}. Targets (issue 13): import >= 0.6 of the floor, at most 400 bytes per member, peak RSS flat under
250 MB at 10 M rows.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import people  # noqa: E402


def floor(path: Path, rows: int) -> tuple[int, float]:
    """Parse + prepare only: (rows done, seconds)."""
    from bench.normalize import clear_caches
    from platforms import matchkeys

    clear_caches()  # the import warmed them; the floor starts cold too
    order = matchkeys.person_order("external_id")
    prepare_rows, identifiable, person_id = matchkeys.prepare_rows, matchkeys.is_identifiable, matchkeys.person_id
    done = 0
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        started = time.perf_counter()
        while done < rows:
            chunk = [row for _, row in zip(range(min(people.CHUNK, rows - done)), reader, strict=False)]
            if not chunk:
                break
            for record in prepare_rows(chunk, people.RAW_KEYS, default_region="US"):
                if identifiable(record.stored):
                    person_id(record.stored, order)
            done += len(chunk)
        return done, time.perf_counter() - started


def child(path: Path) -> dict:
    """The import's process: the import through the task's code, then the sizes."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from audiences import imports, tasks
    from audiences.models import Audience, Member, MemberChange, MemberVersion
    from platforms.adapters.registry import all_adapter_classes

    all_adapter_classes()  # imported once per worker process (the coverage step reads them): not per import
    owner = get_user_model().objects.create_user("bench")
    audience = Audience.objects.create(owner=owner, name="bench", default_country="US")
    rss_before = people.peak_rss_mb()
    started = time.perf_counter()
    job = imports.create_import_from_path(owner=owner, audience=audience, path=path)
    imports.start_import(job, enqueue=False)
    tasks.import_audience(job.pk)
    seconds = time.perf_counter() - started
    peak = people.peak_rss_mb()
    job.refresh_from_db()
    audience.refresh_from_db()
    assert job.status == "succeeded", job.error_message
    sizes = people.table_bytes(Member, MemberVersion, MemberChange)
    return {
        "rows": job.rows_total, "seconds": round(seconds, 2), "rows_per_s": round(job.rows_total / seconds),
        "peak_rss_mb": round(peak, 1), "rss_before_import_mb": round(rss_before, 1),
        "imported": job.rows_imported, "rejected": job.rows_rejected, "duplicates": job.rows_duplicate,
        "members": audience.member_count, "person_key": job.person_key, "sizes": sizes, "bytes": job.size_bytes,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--floor-rows", type=int, default=1_000_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: the import's process
    parser.add_argument("--floor", help=argparse.SUPPRESS)  # internal: a floor's process
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(child(Path(args.child))))
        return {}
    if args.floor:
        done, seconds = floor(Path(args.floor), args.floor_rows)
        print(json.dumps({"rows": done, "seconds": seconds}))
        return {}

    t0 = time.perf_counter()
    path = people.write_csv(people.BENCH_DIR / f"import-{args.n}-{args.seed}.csv", args.n, args.seed, messy=True)
    gen_seconds = time.perf_counter() - t0
    env = people.environment(people.fresh_database(args.db, "bench_import"))

    def run(*extra) -> dict:
        result = subprocess.run([sys.executable, __file__, str(args.n), *extra], env=env, cwd=ROOT,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.stderr.write(result.stderr[-4000:])
            raise SystemExit(result.returncode)
        return json.loads(result.stdout.strip().splitlines()[-1])

    # The floor runs before and after the import, each in its own process (its caches never touch the import's
    # peak RSS), and the import is compared with their mean: on a shared machine the load drifts during a run.
    floor_rows = str(min(args.n, args.floor_rows))
    floors = [run("--floor-rows", floor_rows, "--floor", str(path))]
    f = run("--child", str(path))
    floors.append(run("--floor-rows", floor_rows, "--floor", str(path)))
    rates = [round(x["rows"] / x["seconds"]) for x in floors]
    f["floor_rows"], f["floor_rows_per_s"] = floors[0]["rows"], round(sum(rates) / len(rates))
    ratio = round(f["rows_per_s"] / f["floor_rows_per_s"], 3) if f["floor_rows_per_s"] else None
    bytes_per_member = people.per_member(f["sizes"], f["members"])
    print(f"file: {path.name} ({f['bytes'] / 1e6:.0f} MB, generated/reused in {gen_seconds:.1f} s); person key "
          f"{f['person_key']}")
    print(f"{'db':<10}{'rows':>12}{'seconds':>10}{'rows/s':>10}{'floor/s':>10}{'ratio':>8}{'peak RSS':>11}"
          f"{'B/member':>10}")
    print(f"{args.db:<10}{f['rows']:>12,}{f['seconds']:>10.1f}{f['rows_per_s']:>10,}{f['floor_rows_per_s'] or 0:>10,}"
          f"{ratio or 0:>8.2f}{f['peak_rss_mb']:>8.0f} MB{bytes_per_member or 0:>10.0f}")
    print(f"imported {f['imported']:,} rows as {f['members']:,} members; rejected {f['rejected']:,}, merged "
          f"duplicates {f['duplicates']:,}; floor over {f['floor_rows']:,} rows: {rates[0]:,} rows/s before the "
          f"import, {rates[1]:,} after; RSS before the import "
          f"{f['rss_before_import_mb']:.0f} MB")
    people.print_sizes("member tables", f["sizes"], f["members"])
    summary = {
        "benchmark": "import", "rows": f["rows"], "db": args.db, "seconds": f["seconds"],
        "rows_per_s": f["rows_per_s"], "floor_rows_per_s": f["floor_rows_per_s"], "floor_rates": rates,
        "ratio_to_floor": ratio,
        "peak_rss_mb": f["peak_rss_mb"], "imported": f["imported"], "rejected": f["rejected"],
        "duplicates": f["duplicates"], "members": f["members"], "bytes_per_member": bytes_per_member,
        "member_tables": f["sizes"],
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
