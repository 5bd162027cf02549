"""Normalize-and-hash benchmark: our match-key path against the hashing floor and the Meta SDK's helper.

    .venv/bin/python bench/normalize.py [N] [--seed 7] [--chunk 50000] [--clock cpu|wall] [--repeat 1]
                                        [--matchkeys FILE]

Generates N synthetic raw rows from a seed (every match key, with the mess real files have: case and
whitespace, phone formats, full state names, ZIP+4, country names, dates in several formats, gender
words, upper-case device ids; ~10 % British rows), then times, chunk by chunk (row generation is not timed):

- ours (meta):   prepare_rows(10,000 CSV-shaped rows, column keys, default_region="US") + platform_values("meta",
                 stored) per row
- ours (google): the same with platform_values("google_ads", stored)
  (prepare_rows is the importer's batch entry point; platform_values is what the sync hands the adapter)
- floor:         bare hashlib.sha256(s.encode()).hexdigest() over the already-normalized strings Meta
                 receives hashed (13 per full row), nothing else
- sdk:           facebook_business CustomAudience.format_params(schema, users, is_raw=True), the SDK's
                 multi-key path, on the same raw rows in 10,000-user requests (no network)

Our caches are cleared before every timed pass so no pass profits from the previous one's work.
Prints a table with ours / floor and ours / SDK, then one JSON line. Targets (issue 8): ours >= 40 % of the
floor and >= 3x the SDK.

Fairness on a shared, noisy machine:
- ``--clock cpu`` (default) times with ``time.process_time``: CPU seconds of this (single-threaded) process,
  so other processes competing for the two cores do not inflate one path more than another. ``--clock wall``
  uses ``time.perf_counter``.
- The generated input of a chunk is frozen out of the cyclic GC (``gc.freeze``) while the chunk is timed:
  otherwise every full collection triggered by a path's own allocations (the SDK's lists, our records) would
  rescan the benchmark's 50,000 generated rows, a cost no importer has. The paths' own objects stay visible
  to the collector.
- ``--repeat K`` runs everything K times and reports the median rate of each path (and the medians of the
  per-run ratios in the JSON line).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.util
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The platforms' match-key tables come from their adapters, found through the registry (settings).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "activation_manager.settings")

import django  # noqa: E402

django.setup()

from facebook_business.adobjects.customaudience import CustomAudience  # noqa: E402

from platforms import matchkeys  # noqa: E402

_SYLLABLES = ["an", "bel", "car", "da", "el", "fran", "gi", "ha", "is", "jo", "ka", "li", "ma", "no", "ol", "pe",
              "qui", "ro", "sa", "ti", "u", "vi", "wen", "xa", "yo", "ze", "é", "ö", "ñ"]  # fmt: skip
_US_STATES = [("CA", "California"), ("NY", "New York"), ("TX", "Texas"), ("FL", "Florida"),
              ("WA", "Washington"), ("IL", "Illinois"), ("MA", "Massachusetts"), ("GA", "Georgia"), ("OH", "Ohio"),
              ("CO", "Colorado")]  # fmt: skip
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]  # fmt: skip
_GENDERS = ["M", "F", "male", "female", "Male", "Female", "m", "f", "W", "Frau"]
_COUNTRIES_US = ["US", "USA", "United States", "us", "U.S."]
_COUNTRIES_GB = ["GB", "UK", "United Kingdom", "gbr"]
_DOMAINS = ["gmail.com", "yahoo.com", "hotmail.com", "example.com", "outlook.com", "icloud.com", "googlemail.com"]

SCHEMA = ["EMAIL", "PHONE", "FN", "LN", "FI", "CT", "ST", "ZIP", "COUNTRY", "DOBY", "DOBM", "DOBD", "GEN",
          "EXTERN_ID", "MADID"]  # fmt: skip


BATCH = 10_000  # rows per prepare_records call, as the importer batches


def _name(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(parts)).capitalize()


class Generator:
    """Deterministic messy rows. Names and cities come from pools (real lists repeat them); emails,
    phones, ids are unique per row."""

    def __init__(self, seed: int):
        rng = random.Random(seed)
        self.rng = rng
        self.first_names = [_name(rng, rng.randint(2, 3)) for _ in range(3000)]
        self.last_names = [_name(rng, rng.randint(2, 4)) for _ in range(40000)]
        self.cities = [
            _name(rng, rng.randint(2, 4)) + rng.choice(["", " City", " Falls", "-on-Sea"]) for _ in range(2000)
        ]
        self.n = 0

    def row(self) -> tuple[dict, list[str]]:
        """One raw row (our keys) and the same values in the SDK's schema order (DOB split for it)."""
        rng = self.rng
        self.n += 1
        i = self.n
        gb = rng.random() < 0.1
        first = rng.choice(self.first_names)
        last = rng.choice(self.last_names)
        local = rng.choice([f"{first}.{last}", f"{first}{last}{i}", f"{first[0]}{last}", f"{last}.{first}{i % 97}"])
        email = f"{local}{i}@{rng.choice(_DOMAINS)}"
        email = rng.choice([email, email.upper(), f"  {email} ", email.lower()])
        if gb:
            national = f"7{rng.randint(100, 999)}{rng.randint(100000, 999999)}"
            phone = rng.choice(
                [f"0{national[:4]} {national[4:]}", f"+44 {national[:4]} {national[4:]}", f"+44{national}"]
            )
            postal = rng.choice(["SW1A 1AA", "EC1A 1BB", "W1A 0AX", "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT"])
            postal = rng.choice([postal, postal.lower(), postal.replace(" ", "")])
            state = rng.choice(["England", "Scotland", "Wales"])
            country = rng.choice(_COUNTRIES_GB)
        else:
            area = rng.choice([201, 202, 212, 213, 305, 312, 415, 512, 617, 646, 650, 702, 713, 718, 773, 818, 917])
            exchange = rng.randint(200, 999)
            line = rng.randint(0, 9999)
            phone = rng.choice(
                [f"({area}) {exchange}-{line:04d}", f"{area}-{exchange}-{line:04d}", f"{area}.{exchange}.{line:04d}",
                 f"+1 {area} {exchange} {line:04d}", f"1{area}{exchange}{line:04d}", f"{area}{exchange}{line:04d}"]
            )  # fmt: skip
            zip5 = rng.randint(1000, 99999)
            postal = rng.choice([f"{zip5:05d}", f"{zip5:05d}-{rng.randint(0, 9999):04d}", f"{zip5:05d}"])
            code, full = rng.choice(_US_STATES)
            state = rng.choice([code, full, code.lower()])
            country = rng.choice(_COUNTRIES_US)
        year, month, day = rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28)
        dob = rng.choice(
            [f"{year}-{month:02d}-{day:02d}", f"{year}{month:02d}{day:02d}",
             (f"{month}/{day}/{year}" if not gb else f"{day}/{month}/{year}"), f"{_MONTHS[month - 1]} {day}, {year}",
             f"{day} {_MONTHS[month - 1][:3]} {year}"]
        )  # fmt: skip
        gender = rng.choice(_GENDERS)
        external_id = f"CRM-{i:09d}"
        maid = "%08X-%04X-%04X-%04X-%012X" % (  # noqa: UP031
            rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16), rng.getrandbits(16), rng.getrandbits(48)
        )  # fmt: skip
        city = rng.choice(self.cities)
        first_cell = rng.choice([first, first.upper(), f" {first} "])
        raw = {
            "email": email, "phone": phone, "first_name": first_cell, "last_name": last, "city": city,
            "state": state, "postal_code": postal, "country": country, "date_of_birth": dob, "gender": gender,
            "external_id": external_id, "maid": maid,
        }  # fmt: skip
        sdk = [email, phone, first_cell, last, first[0], city, state, postal, country, str(year), str(month), str(day),
               gender, external_id, maid]  # fmt: skip
        return raw, sdk


def normalized_strings(stored_row: dict, default_region: str) -> list[str]:
    """The strings Meta receives hashed for this row, normalized (untimed: computed before the floor)."""
    out = []
    for key in ("email", "first_name", "last_name", "first_initial", "city", "state", "postal_code", "country",
                "gender"):  # fmt: skip
        value = matchkeys.normalize(
            key if key != "first_initial" else "first_name",
            stored_row[key if key != "first_initial" else "first_name"],
            platform="meta",
            default_region=default_region,
        )
        if value is not None:
            out.append(value[0] if key == "first_initial" else value)
    phone = matchkeys.normalize("phone", stored_row["phone"], platform="meta", default_region=default_region)
    if phone:
        out.append(phone)
    dob = matchkeys.normalize("date_of_birth", stored_row["date_of_birth"], default_region=default_region)
    if dob:
        out.extend((dob[:4], dob[4:6], dob[6:]))
    return out


def clear_caches() -> None:
    """Empty our value caches (not the compiled phone plans and country tables, built once per process)."""
    clear = getattr(matchkeys, "clear_value_caches", None)
    if clear is not None:
        clear()
        return
    # An older copy of the module (--matchkeys FILE) has no clear_value_caches.
    for name in dir(matchkeys):
        fn = getattr(matchkeys, name)
        if isinstance(fn, type) or name in ("_plan", "_plan_for_cc", "_country_tables"):
            continue
        if callable(getattr(fn, "cache_clear", None)):
            fn.cache_clear()


def chunks(n: int, seed: int, size: int):
    """The same rows, chunk by chunk, every time it is called with the same seed."""
    gen = Generator(seed)
    done = 0
    while done < n:
        count = min(size, n - done)
        rows, sdk_rows = zip(*(gen.row() for _ in range(count)), strict=True)
        yield rows, sdk_rows
        done += count


def run(n: int, seed: int, chunk: int, clock=time.process_time) -> dict:
    prepare_rows = matchkeys.prepare_rows
    sha256 = hashlib.sha256
    format_params = CustomAudience.format_params
    timings = {}
    # Warm-up, untimed: compile the phone plans and country tables once, as a running worker has.
    for rows, _ in chunks(2_000, seed + 1, 2_000):
        matchkeys.prepare_records(list(rows), default_region="US")
    # One pass per path over the whole input (as one import would run), caches cleared before each pass.
    for label, code in (("meta", "meta"), ("google", "google_ads")):
        build = matchkeys.values_function(code)  # platform_values without the lookup: same generated function
        clear_caches()
        elapsed = 0.0
        for rows, _ in chunks(n, seed, chunk):
            keys = list(rows[0])
            cells = [list(row.values()) for row in rows]  # CSV-shaped rows, as csv.reader yields them
            gc.freeze()
            t0 = clock()
            for start in range(0, len(cells), BATCH):
                for record in prepare_rows(cells[start : start + BATCH], keys, default_region="US"):
                    build(record.stored)
            elapsed += clock() - t0
            gc.unfreeze()
        timings[label] = elapsed
    clear_caches()
    hashes = 0
    elapsed = 0.0
    for rows, _ in chunks(n, seed, chunk):
        floor_input = [normalized_strings(r, "US") for r in rows]
        hashes += sum(len(s) for s in floor_input)
        gc.freeze()
        t0 = clock()
        for strings in floor_input:
            for s in strings:
                sha256(s.encode()).hexdigest()
        elapsed += clock() - t0
        gc.unfreeze()
    timings["floor"] = elapsed
    elapsed = 0.0
    for _, sdk_rows in chunks(n, seed, chunk):
        users = [list(r) for r in sdk_rows]
        gc.freeze()
        t0 = clock()
        for start in range(0, len(users), 10_000):
            format_params(SCHEMA, users[start : start + 10_000], is_raw=True)
        elapsed += clock() - t0
        gc.unfreeze()
    timings["sdk"] = elapsed
    return {
        "rows": n,
        "ours_meta_rows_per_s": round(n / timings["meta"]),
        "ours_google_rows_per_s": round(n / timings["google"]),
        "floor_rows_per_s": round(n / timings["floor"]),
        "sdk_rows_per_s": round(n / timings["sdk"]),
        "floor_hashes_per_row": round(hashes / n, 2),
    }


RATES = ("ours_meta_rows_per_s", "ours_google_rows_per_s", "floor_rows_per_s", "sdk_rows_per_s")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: process CPU time (default; robust on a shared machine); wall: perf_counter",
    )
    parser.add_argument("--repeat", type=int, default=1, help="run K times, report medians")
    parser.add_argument(
        "--matchkeys",
        metavar="FILE",
        help="time this copy of platforms/matchkeys.py instead (before/after comparisons in the same conditions: "
        "git show REV:platforms/matchkeys.py > FILE)",
    )
    args = parser.parse_args(argv)
    if args.matchkeys:
        global matchkeys
        spec = importlib.util.spec_from_file_location("matchkeys_under_test", args.matchkeys)
        matchkeys = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(matchkeys)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    runs = []
    for i in range(args.repeat):
        runs.append(run(args.rows, args.seed, args.chunk, clock))
        if args.repeat > 1:
            r = runs[-1]
            print(
                f"run {i + 1}: "
                + "  ".join(f"{k.removesuffix('_rows_per_s')} {r[k]:,}" for k in RATES)
                + f"  meta/floor {r['ours_meta_rows_per_s'] / r['floor_rows_per_s']:.2f}"
                + f"  meta/sdk {r['ours_meta_rows_per_s'] / r['sdk_rows_per_s']:.2f}",
                flush=True,
            )
    result = {"rows": args.rows, **{k: round(statistics.median(r[k] for r in runs)) for k in RATES}}
    floor = result["floor_rows_per_s"]
    sdk = result["sdk_rows_per_s"]
    print(
        f"rows: {args.rows:,}  (seed {args.seed}; floor hashes per row: {runs[0]['floor_hashes_per_row']}; "
        f"clock: {args.clock}; {'median of ' + str(args.repeat) + ' runs' if args.repeat > 1 else '1 run'}"
        + (f"; matchkeys from {args.matchkeys}" if args.matchkeys else "")
        + ")"
    )
    print(f"{'path':<16}{'rows/s':>12}{'/ floor':>10}{'/ sdk':>10}")
    for label, key in (("ours (meta)", "ours_meta_rows_per_s"), ("ours (google)", "ours_google_rows_per_s"),
                       ("floor (sha256)", "floor_rows_per_s"), ("sdk (meta)", "sdk_rows_per_s")):  # fmt: skip
        rate = result[key]
        print(f"{label:<16}{rate:>12,}{rate / floor:>10.2f}{rate / sdk:>10.2f}")
    if args.repeat > 1:
        for path in ("meta", "google"):
            for ref in ("floor", "sdk"):
                ratios = [r[f"ours_{path}_rows_per_s"] / r[f"{ref}_rows_per_s"] for r in runs]
                result[f"median_{path}_over_{ref}"] = round(statistics.median(ratios), 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
