"""The benchmarks still run against today's code: each bench script on a tiny audience on SQLite, as a subprocess
(side by side: they take a few seconds each), ending with its JSON line and the figures docs/performance.md
quotes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPTS = {
    "import": (["bench/import.py", "300", "--db", "sqlite", "--floor-rows", "300"],
               {"benchmark", "rows", "db", "seconds", "rows_per_s", "floor_rows_per_s", "ratio_to_floor",
                "peak_rss_mb", "imported", "rejected", "duplicates", "members", "bytes_per_member"}),
    "sync": (["bench/sync.py", "200", "--db", "sqlite"],
             {"benchmark", "members", "status", "sent", "wall_seconds", "records_per_second", "peak_rss_mb",
              "synced_members", "bytes_per_synced_member", "bytes_per_member", "rerun_sent", "rerun_wall_seconds",
              "fake_audience_size"}),
    "resync": (["bench/resync.py", "200", "--db", "sqlite"],
               {"benchmark", "members", "first_sync_seconds", "resync_seconds", "speedup", "resync_sent",
                "resync_removed", "sent_share", "first_status", "resync_status", "fake_audience_size"}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start the three scripts at once; {name: CompletedProcess-like (returncode, stdout, stderr)}."""
    out = tmp_path_factory.mktemp("bench")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env["BENCH_DIR"] = str(out)
    started = {}
    for name, (argv, _) in SCRIPTS.items():
        started[name] = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, text=True,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finished = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=240)
        finished[name] = (process.returncode, stdout, stderr)
    return finished


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_each_bench_script_runs_and_ends_with_its_json_line(runs, name):
    returncode, stdout, stderr = runs[name]
    assert returncode == 0, stderr[-3000:]
    figures = json.loads(stdout.strip().splitlines()[-1])
    assert SCRIPTS[name][1] <= set(figures), SCRIPTS[name][1] - set(figures)
    assert figures["benchmark"] == name


def test_the_bench_figures_add_up(runs):
    imported = json.loads(runs["import"][1].strip().splitlines()[-1])
    assert imported["rows"] == 300 and imported["members"] + imported["duplicates"] + imported["rejected"] == 300
    assert imported["bytes_per_member"] is None  # measured on PostgreSQL only
    synced = json.loads(runs["sync"][1].strip().splitlines()[-1])
    assert (synced["status"], synced["sent"], synced["synced_members"], synced["fake_audience_size"]) == (
        "succeeded", 200, 200, 200)
    assert synced["rerun_sent"] == 0  # nothing changed: nothing sent again
    resynced = json.loads(runs["resync"][1].strip().splitlines()[-1])
    # 1 % of 200 people replaced: two added, two removed, and the platform holds the audience exactly.
    assert (resynced["resync_sent"], resynced["resync_removed"], resynced["fake_audience_size"]) == (2, 2, 200)
