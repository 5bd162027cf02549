"""Generate the sample customer file shipped for demo mode (deterministic, synthetic people).

    .venv/bin/python scripts/make_sample_csv.py > audiences/sample_data/sample-customers.csv

The mess is deliberate: mixed-case and padded emails, phones in national formats of several
countries, accents, blank cells, a "Cust Ref" column the auto-mapping cannot guess, and a few
invalid rows, so the mapping step and the rejection report have something to show.
"""

import csv
import random
import sys
import unicodedata

FIRST = ["José", "Zoë", "François", "Ana", "Liam", "Noah", "Emma", "Olivia", "Mia", "Lukas", "Renée", "Søren",
         "Chloé", "Mateo", "Amélie", "Jürgen", "Siobhán", "Ava", "Ethan", "Isabella", "Yusuf", "Hana", "Priya"]
LAST = ["García", "Müller", "O'Brien", "Smith", "Johnson", "Dubois", "Rossi", "Nowak", "Jensen", "Brown",
        "Martín", "Schröder", "Lefèvre", "Kowalski", "Nguyen", "Fernández", "Williams", "Taylor", "Kaya"]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.co.uk", "web.de", "orange.fr", "icloud.com"]
PLACES = [  # country, city, state, postcode pattern, phone formatter
    ("US", "San Francisco", "CA", lambda r: f"{r.randint(94102, 94188)}",
     lambda r: f"({r.choice([415, 650, 510])}) {r.randint(200, 999)}-{r.randint(0, 9999):04d}"),
    ("US", "New York", "NY", lambda r: f"{r.randint(10001, 10292)}",
     lambda r: f"+1 {r.choice([212, 646, 917])}-{r.randint(200, 999)}-{r.randint(0, 9999):04d}"),
    ("GB", "London", "", lambda r: f"SW{r.randint(1, 20)} {r.randint(1, 9)}AB",
     lambda r: f"07{r.randint(400, 999)} {r.randint(100000, 999999)}"),
    ("DE", "Berlin", "BE", lambda r: f"{r.randint(10115, 14199)}",
     lambda r: f"+49 30 {r.randint(1000000, 9999999)}"),
    ("FR", "Paris", "", lambda r: f"750{r.randint(1, 20):02d}",
     lambda r: f"+33 6 {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)}"),
]
INVALID = [
    {"E-mail": "john at example dot com", "Mobile Number": "12"},
    {"E-mail": "", "Mobile Number": "", "First Name": "Nobody", "Last Name": ""},
    {"E-mail": "=HYPERLINK(\"http://evil.example\")", "Mobile Number": "+1 555"},
    {"E-mail": "double@@example.com", "Birthday": "31/02/1990"},
]


def main(rows: int = 3000, seed: int = 20261124) -> None:
    rng = random.Random(seed)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    header = ["E-mail", "Mobile Number", "First Name", "Last Name", "City", "State", "Post Code", "Country",
              "Birthday", "Gender", "Cust Ref"]
    writer.writerow(header)
    for index in range(rows):
        if index % 250 == 17:
            bad = INVALID[(index // 250) % len(INVALID)]
            writer.writerow([bad.get(column, "") for column in header])
            continue
        first, last = rng.choice(FIRST), rng.choice(LAST)
        country, city, state, postcode, phone = rng.choice(PLACES)
        local = unicodedata.normalize("NFKD", f"{first}.{last}{rng.randint(1, 999)}".replace("'", ""))
        local = local.encode("ascii", "ignore").decode()
        email = f"{local}@{rng.choice(DOMAINS)}"
        if rng.random() < 0.3:
            email = f"  {email.upper()} "
        birthday = rng.choice([
            f"{rng.randint(1950, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1950, 2004)}",
            "",
        ])
        row = [
            email if rng.random() > 0.05 else "",
            phone(rng) if rng.random() > 0.15 else "",
            first, last, city, state, postcode(rng),
            country if rng.random() > 0.1 else "",
            birthday, rng.choice(["F", "M", "female", "male", ""]),
            f"CR-{100000 + index}",
        ]
        writer.writerow(row)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
