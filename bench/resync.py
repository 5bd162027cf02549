"""Re-sync benchmark: the incremental path after a small re-import.

    .venv/bin/python bench/resync.py [N] [--db postgres|sqlite] [--change PCT] [--seed 7] [--records]

N people (default 1,000,000; the twelve columns of bench/people.py) are imported from a generated CSV file by the
import task and synced (mirror mode) to the fake Meta Graph API; a second file, in which the first PCT % of the
people (default 1 %) are replaced by as many new ones, is imported the same way (the import records its changes);
the re-sync sends the difference. bench/sync.py does the work (see its docstring); ``--records`` fills the
audience from prepared records through ``audiences.imports.import_records`` instead of files (quicker to set up;
the sync figures are the same).

Prints the first sync and the re-sync side by side, then one JSON line: {"benchmark", "members", "db",
"first_sync_seconds", "resync_seconds", "speedup", "resync_sent", "resync_removed", "sent_share", "first_status",
"resync_status", "fake_audience_size"}. Targets (issues 4 and 13): the re-sync at least 20x faster than the first
sync, sending at most 1.1 % of the members.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import sync  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--change", type=float, default=1.0, metavar="PCT")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--records", action="store_true", help="fill the audience from prepared records, not files")
    args = parser.parse_args(argv)
    figures = sync.main([str(args.n), "--db", args.db, "--platform", "meta", "--seed", str(args.seed),
                         "--change", f"{args.change:g}", "--database-name", "bench_resync",
                         *([] if args.records else ["--via-import"])])
    first, again = figures["wall_seconds"], figures["rerun_wall_seconds"]
    share = figures["rerun_sent"] / args.n if args.n else None
    print()
    print(f"{'':<14}{'status':>11}{'wall s':>9}{'sent':>11}{'removed':>9}")
    print(f"{'first sync':<14}{figures['status']:>11}{first:>9.2f}{figures['sent']:>11,}{0:>9,}")
    print(f"{'1 % re-sync' if args.change == 1 else f'{args.change:g} % re-sync':<14}{figures['rerun_status']:>11}"
          f"{again:>9.2f}{figures['rerun_sent']:>11,}{figures['rerun_removed']:>9,}")
    print(f"speed-up {figures['rerun_speedup']}x (target >= 20x); re-sync sent {share or 0:.2%} of the members "
          f"(target <= 1.1 %); the platform audience holds {figures['fake_audience_size']:,}")
    summary = {
        "benchmark": "resync", "members": args.n, "db": args.db, "changed_percent": args.change,
        "first_sync_seconds": first, "resync_seconds": again, "speedup": figures["rerun_speedup"],
        "resync_sent": figures["rerun_sent"], "resync_removed": figures["rerun_removed"],
        "sent_share": round(share, 5) if share is not None else None, "first_status": figures["status"],
        "resync_status": figures["rerun_status"], "resync_plan_seconds": figures["rerun_plan_seconds"],
        "fake_audience_size": figures["fake_audience_size"],
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    result = main()
    ok = result["first_status"] == result["resync_status"] == "succeeded"
    sys.exit(0 if ok and result["fake_audience_size"] == result["members"] else 1)
