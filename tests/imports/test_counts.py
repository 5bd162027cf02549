"""The import tells the truth about every value: values dropped from rows still imported are counted per column
and reason, every rejected row is counted once, every count says whether it counts rows or values, and what each
platform can use of the audience is shown."""

import json

import pytest
from django.urls import reverse

from audiences import imports, selectors
from audiences.models import Audience, ImportJob
from platforms import matchkeys

# The values of the issue, in rows that are still imported (each has a customer id), and two rejected rows.
ISSUE_FILE = (
    "customer_id;email;phone;date_of_birth;gender;country;first_name\n"
    "C1;bad@;+33612345678;1985-03-01;F;FR;Anne\n"          # row 2: email dropped
    "C2;user@gmail;+33612345679;;;;\n"                       # row 3: email dropped
    "C3;ok3@example.fr;0612;;;;\n"                           # row 4: phone dropped
    "C4;ok4@example.fr;;1990-02-30;;;\n"                     # row 5: date dropped
    "C5;ok5@example.fr;;;X;;\n"                              # row 6: gender dropped
    "C6;ok6@example.fr;;;;Espagne;\n"                        # row 7: country dropped
    ";bad;0612;;;;Zoé\n"                                     # row 8: rejected (email and phone unusable)
    ";;;;;;\n"                                               # row 9: rejected (nothing at all)
    "C9;;;;;;\n"                                             # row 10: only a customer id
)


def reason(key: str, raw: str) -> str:
    record = matchkeys.prepare_record({key: raw}, default_region="FR")
    assert record.rejections, (key, raw)
    return record.rejections[0][1]


@pytest.fixture
def french(user):
    return Audience.objects.create(owner=user, name="Clients", default_country="FR")


@pytest.fixture
def issue_job(run_file, french):
    job = run_file(ISSUE_FILE, target=french)
    assert job.status == ImportJob.Status.SUCCEEDED, job.error_message
    return job


def counts_of(job) -> dict[str, dict]:
    return {column["column"]: column for column in job.column_counts}


def test_rejected_rows_by_reason_add_up_to_the_rejected_rows(issue_job):
    assert (issue_job.rows_total, issue_job.rows_imported, issue_job.rows_rejected) == (9, 7, 2)
    assert sum(issue_job.rejections_by_reason.values()) == issue_job.rows_rejected == 2
    assert issue_job.rejections_by_reason == {f"email: {reason('email', 'bad')}": 1, imports.NO_KEY_REASON: 1}
    # The rejected row is still listed with each of its problems.
    listed = list(issue_job.rejected_rows.values_list("row_number", "column", "reason"))
    assert (8, "email", reason("email", "bad")) in listed and (8, "phone", reason("phone", "0612")) in listed
    assert (9, "", imports.NO_KEY_REASON) in listed


def test_values_dropped_from_imported_rows_are_counted_per_column_and_reason(issue_job):
    counts = counts_of(issue_job)
    assert counts["email"]["dropped"] == {reason("email", "bad@"): 3}  # bad@, user@gmail (kept rows), bad (row 8)
    assert counts["email"]["used"] == 4 and counts["email"]["empty"] == 2
    assert counts["phone"]["dropped"] == {reason("phone", "0612"): 2} and counts["phone"]["used"] == 2
    assert counts["date_of_birth"]["dropped"] == {reason("date_of_birth", "1990-02-30"): 1}
    assert counts["gender"]["dropped"] == {reason("gender", "X"): 1}
    assert counts["country"]["dropped"] == {reason("country", "Espagne"): 1}
    assert counts["customer_id"] == {"column": "customer_id", "key": "external_id", "used": 7, "dropped": {},
                                     "empty": 2, "in_rejected_rows": 0}
    # A good value in a rejected row is neither used nor dropped.
    assert counts["first_name"]["in_rejected_rows"] == 1 and counts["first_name"]["used"] == 1
    # Every column accounts for every row read.
    for column in issue_job.column_counts:
        total = column["used"] + sum(column["dropped"].values()) + column["empty"] + column["in_rejected_rows"]
        assert total == issue_job.rows_total, column


def test_the_command_json_says_the_encoding_and_the_dropped_values(issue_job):
    summary = imports.summary(issue_job)
    assert summary["encoding"] == "utf-8" and summary["person_key"] == "external_id"
    assert summary["dropped_by_reason"][f"email: {reason('email', 'bad@')}"] == 3
    assert summary["dropped_by_reason"][f"gender: {reason('gender', 'X')}"] == 1
    json.dumps(summary)


def test_each_platform_says_how_many_members_it_can_use(issue_job, french):
    french.refresh_from_db()
    assert french.member_count == 7
    linkedin = selectors.platform_usable(french, "linkedin")
    assert (linkedin.usable, linkedin.members, linkedin.keys) == (4, 7, "email or mobile advertiser ID")
    meta = selectors.platform_usable(french, "meta")
    assert meta.usable == 7 and "external ID" in meta.keys  # the customer-id-only row: Meta alone can use it
    assert selectors.platform_usable(french, "tiktok").usable == 6  # email or phone
    assert {p.code for p in selectors.platform_coverage(french)} >= {"meta", "linkedin", "tiktok"}


def test_the_audience_page_shows_values_by_column_and_platform_use(issue_job, french, alice_client):
    page = alice_client.get(reverse("audience_detail", kwargs={"audience_pk": french.pk})).content.decode()
    assert "Values by column" in page and "What each platform can use" in page
    assert "Counts <strong>values</strong>" in page and "Counts <strong>members</strong>" in page
    assert "4 of 7" in page  # LinkedIn
    assert reason("email", "bad@") in page and "Rejected rows by reason" in page
    assert ">Rows</th>" in page  # the by-reason table counts rows
    for raw in ("bad@", "user@gmail", "Espagne", "1990-02-30"):
        assert raw not in page


def test_a_connected_platform_is_what_the_audience_page_speaks_of(issue_job, french, user):
    from credentials.models import Connection
    from platforms.models import Platform

    Connection.objects.create(owner=user, platform=Platform.objects.get(code="linkedin"), label="EU", secrets={})
    assert [p.code for p in selectors.platform_coverage(french)] == ["linkedin"]


def test_whitespace_only_cells_count_as_empty_not_dropped(run_file):
    job = run_file("email,phone\na@example.com,   \n   ,+14155550100\n")
    counts = counts_of(job)
    assert counts["email"]["dropped"] == {} and counts["email"]["empty"] == 1
    assert counts["phone"]["dropped"] == {} and counts["phone"]["empty"] == 1
    assert job.rejections_by_reason == {}


def test_blank_lines_and_unreadable_rows_keep_the_columns_adding_up(run_file, monkeypatch):
    monkeypatch.setattr(imports, "MAX_LINE_CHARS", 200)
    text = "email,first_name\na@example.com,Zoë\n\n" + "b@example.com," + "y" * 500 + "\nc@example.com,\n"
    job = run_file(text)
    assert job.rows_total == 3 and job.rows_rejected == 1
    for column in job.column_counts:
        assert column["used"] + sum(column["dropped"].values()) + column["empty"] + column["in_rejected_rows"] == 3
    assert counts_of(job)["email"]["in_rejected_rows"] == 1


def test_a_name_and_address_counts_where_the_platform_matches_on_it(run_file, french):
    job = run_file("first_name;last_name;postal_code;country;city\n"
                   "Anne;Martin;75001;FR;Paris\n"       # Google (full address) and Meta
                   "Paul;Durand;;FR;Lyon\n"             # Meta only (name and city): Google needs the postal code
                   "Marie;Lefèvre;69001;;\n",           # Meta (name and postal code); Google lacks the country
                   target=french)
    assert job.rows_imported == 3
    french.refresh_from_db()
    assert french.platform_coverage["meta"] == 3
    # Google's address match takes first and last name, country and postal code: all four.
    assert french.platform_coverage["google_dm"] == french.platform_coverage["google_ads"] == 1
    assert french.platform_coverage["linkedin"] == 0
