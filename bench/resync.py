"""Re-sync benchmark: the incremental path after a small re-import.

    .venv/bin/python bench/resync.py [N] [--db sqlite|postgres] [--change PCT] [--seed]

Imports N people (default 1,000,000) from a generated CSV file with the real import task, syncs them (mirror
mode) to the local fake Meta Graph API, re-imports a second file in which PCT % of the people (default 1 %)
are replaced by new ones, re-syncs, and prints the records sent and the wall time of both runs (bench/sync.py
does the work; see its docstring). ``--seed`` writes the members directly instead of importing files (faster
to run; the re-import then uses the importer's own final steps). Targets (issue 4): the re-sync sends at most
1.1 % of the records and runs at least 20x faster than the first sync.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import sync  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--change", type=float, default=1.0, metavar="PCT")
    parser.add_argument("--seed", action="store_true", help="seed members directly instead of importing files")
    args = parser.parse_args()
    return sync.main([str(args.n), "--db", args.db, "--platform", "meta", "--change", f"{args.change:g}",
                      *([] if args.seed else ["--via-import"])])


if __name__ == "__main__":
    sys.exit(main())
