"""Already-hashed input: a column of SHA-256 hex digests is recognised, stored as the plain-form digest it can only
be, used by the platforms where that works, noted per platform where it cannot follow the platform's own rule,
and the person key uses that digest."""

from hashlib import sha256

import pytest

from audiences import hashed, imports, selectors
from audiences.models import Audience, ImportJob
from audiences.storage import all_records
from platforms import matchkeys


def h(text: str) -> str:
    return sha256(text.encode()).hexdigest()


def records(audience):
    return [stored for _, _, stored in all_records(audience.pk)]


@pytest.mark.parametrize(("header", "values", "expected"), [
    ("email_sha256", [h("a@example.com")], "email_sha256"),
    ("hashed_email", [h("a@example.com").upper()], "email_sha256"),
    ("E-mail", [h("a@example.com"), h("b@example.com")], "email_sha256"),  # the values say it
    ("sha256_phone", [h("+14155550100")], "phone_sha256"),
    ("Phone (SHA-256)", [], "phone_sha256"),  # the header says it, no values yet
    ("email", ["a@example.com"], "email"),
    ("customer_id", [h("C1")], "external_id"),  # a digest is a fine external id, taken as it is
    ("first_name_sha256", [h("zoe")], None),  # a hashed name cannot be used: left for the marketer
    ("hash", [h("x")], None),
])
def test_already_hashed_columns_are_recognised(header, values, expected):
    assert hashed.guess_key(header, values) == expected


def test_the_mapping_offers_email_already_hashed(user, audience, tmp_path):
    from audiences.forms import MappingForm

    path = tmp_path / "f.csv"
    path.write_text(f"email_sha256,phone\n{h('a@example.com')},+14155550100\n")
    job = imports.create_import_from_path(owner=user, audience=audience, path=path)
    assert job.column_mapping == {"0": "email_sha256", "1": "phone"}
    rendered = str(MappingForm(job=job)["col_0"])
    assert "Email (already hashed)" in rendered and "Already hashed (SHA-256)" in rendered


def test_a_digest_is_stored_as_the_email_digest_and_identifies_the_same_person(run_file, audience):
    plain = "Zoe.Martin@Example.com"
    run_file(f"email\n{plain}\n")
    before = records(audience)
    job = run_file(f"email_sha256\n{h('zoe.martin@example.com').upper()}\n")
    assert job.status == ImportJob.Status.SUCCEEDED and job.person_key == "email"
    after = records(audience)
    expected = matchkeys.prepare_record({"email": plain}, default_region=None).stored["e"]
    assert after[0]["e"] == before[0]["e"] == expected
    # Same person, same record: nothing joined, changed or left.
    assert (job.members_joined, job.members_changed, job.members_left) == (0, 0, 0)
    audience.refresh_from_db()
    assert audience.key_coverage["email"] == 1


def test_bad_digests_are_dropped_with_a_reason(run_file):
    job = run_file(f"email_sha256,phone\nnot-a-hash,+14155550100\n{h('')},+14155550101\n{h('a@b.co')[:-1]},\n")
    assert (job.rows_imported, job.rows_rejected) == (2, 1)
    dropped = {column["column"]: column["dropped"] for column in job.column_counts}["email_sha256"]
    assert dropped == {hashed.NOT_A_DIGEST: 2, hashed.DIGEST_OF_NOTHING: 1}
    assert job.rejections_by_reason == {f"email_sha256: {hashed.NOT_A_DIGEST}": 1}


def test_platforms_get_the_digest_as_given(run_file, audience):
    digest = h("john.smith+promo@gmail.com")
    run_file(f"email_sha256\n{digest}\n")
    stored = records(audience)[0]
    assert set(stored) == {"e"}  # no Google / UID2 / TikTok form can be made from a digest
    for code in ("meta", "linkedin", "google_dm", "google_ads", "tiktok", "netflix"):
        assert matchkeys.platform_values(code, stored)["email"] == digest, code
    assert matchkeys.platform_values("ttd", stored)["email"] == matchkeys._b64_digest(bytes.fromhex(digest))


def test_a_phone_digest_serves_the_platforms_that_hash_plus_e164_and_no_other(run_file, audience):
    digest = h("+33612345678")
    job = run_file(f"external_id,phone_sha256\nC1,{digest}\n")
    assert job.rows_imported == 1
    stored = records(audience)[0]
    assert matchkeys.platform_values("google_dm", stored)["phone"] == digest
    # Meta and TikTok hash the digits without "+" (TikTok's own hashed example: docs/platforms.md).
    assert "phone" not in matchkeys.platform_values("meta", stored)
    assert "phone" not in matchkeys.platform_values("tiktok", stored)


def test_each_platform_that_cannot_follow_its_rule_gets_a_note():
    email = dict(hashed.platform_notes("email_sha256", ["meta", "google_dm", "ttd", "tiktok", "linkedin"]))
    assert set(email) == {"Google (Data Manager API)", "The Trade Desk", "TikTok"}
    assert "gmail.com" in email["Google (Data Manager API)"] and "may not match" in email["Google (Data Manager API)"]
    assert "+suffix" in email["TikTok"]
    phone = dict(hashed.platform_notes("phone_sha256", ["meta", "google_dm", "linkedin", "tiktok"]))
    assert set(phone) == {"Meta", "TikTok"} and phone["Meta"].startswith("cannot use it")
    assert phone["TikTok"].startswith("cannot use it")


def test_the_mapping_notes_name_the_column_the_expected_form_and_the_platforms(user, audience):
    job = ImportJob.objects.create(owner=user, audience=audience, original_filename="f.csv",
                                   headers=["hashed_email"], column_mapping={"0": "email_sha256"})
    notes = selectors.mapping_notes(job=job, headers=job.headers, mapping=job.column_mapping, person_key="email",
                                    platform_codes=["meta", "google_dm"])
    [(column, label, expected, platform_notes)] = notes.hashed
    assert (column, label) == ("hashed_email", "Email (already hashed)") and "lowercased" in expected
    assert [platform for platform, _ in platform_notes] == ["Google (Data Manager API)"]


def test_a_key_and_its_hashed_form_cannot_both_be_mapped(user, audience):
    job = ImportJob.objects.create(owner=user, audience=audience, original_filename="f.csv",
                                   headers=["email", "email_sha256"], column_mapping={"0": "", "1": ""})
    with pytest.raises(ValueError, match="mapped twice"):
        imports.clean_mapping(job, {"0": "email", "1": "email_sha256"})


def test_person_key_email_is_offered_for_a_hashed_email(user):
    assert imports.mapped_person_keys({"0": "email_sha256", "1": "phone_sha256"}) == ["email", "phone"]
    assert imports.default_person_key({"0": "email_sha256"}) == "email"
    other = Audience.objects.create(owner=user, name="B", default_country="US")
    assert other.person_key == ""
