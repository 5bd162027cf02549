"""Re-sync benchmark: the incremental path after a small re-import.

    .venv/bin/python bench/resync.py [N] [--db sqlite|postgres] [--change PCT]

Seeds N members (default 1,000,000), syncs them (mirror mode) to the local fake Meta Graph API, replaces
PCT % of the members by new people (default 1 %: a re-import), re-syncs, and prints the records sent and the
wall time of both runs (bench/sync.py does the work; see its docstring). Targets (issue 4): the re-sync
sends at most 1.1 % of the records and runs at least 20x faster than the first sync.
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
    args = parser.parse_args()
    return sync.main([str(args.n), "--db", args.db, "--platform", "meta", "--change", f"{args.change:g}"])


if __name__ == "__main__":
    sys.exit(main())
