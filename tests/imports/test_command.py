"""manage.py import_audience: same import from the shell, exit 0 / 2, JSON last line."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from audiences import imports
from audiences.models import Audience, Member


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("import_audience", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_sample_file_imports_with_map_and_prints_json(user):
    code, out, _ = run(str(imports.sample_file_path()), "--owner", "alice", "--name", "Sample", "--country", "US",
                       "--map", "Cust Ref=external_id", "--json")
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    # "encoding", "dropped_by_reason" and "person_key" joined the line with the import-tells-the-truth issue.
    assert set(summary) == {"audience_id", "rows", "imported", "rejected", "duplicates", "rejections_by_reason",
                            "encoding", "dropped_by_reason", "person_key"}
    audience = Audience.objects.get(pk=summary["audience_id"])
    assert summary["rows"] == 3000 and summary["imported"] == audience.member_count > 2500
    assert summary["rejected"] > 0 and sum(summary["rejections_by_reason"].values()) >= summary["rejected"]
    assert audience.key_coverage["external_id"] > 2500 and audience.owner == user
    assert "First rejected rows:" in out and "row " in out


def test_rejected_rows_still_exit_0_and_counts_are_printed(user, tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("email;phone\na@example.com;\nnope;\na@example.com;\n")
    code, out, _ = run(str(path), "--owner", "alice", "--name", "N", "--country", "DE")
    assert code == 0 and "3 rows: 1 imported, 1 rejected, 1 duplicates" in out
    assert "nope" not in out


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"\x00\x01\x02\x03" * 100, "binary"),
    (b"PK\x03\x04rest", "ZIP"),
    (b"foo,bar\n1,2\n", "No column is mapped"),
    (b"<html><body>hi</body></html>", "HTML"),
])
def test_unusable_file_exits_2_with_one_message(user, tmp_path, content, message):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    code, out, err = run(str(path), "--owner", "alice", "--name", "N", "--country", "US", "--json")
    assert code == 2 and message in err
    assert message in json.loads(out.strip().splitlines()[-1])["error"]
    assert not Audience.objects.exists() and not Member.objects.exists()


def test_missing_file_exits_2(user, tmp_path):
    code, _, err = run(str(tmp_path / "missing.csv"), "--owner", "alice", "--name", "N")
    assert code == 2 and "no such file" in err


def test_map_can_ignore_a_column_and_bad_arguments_are_errors(user, tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("email,phone\na@example.com,+14155550100\n")
    code, out, _ = run(str(path), "--owner", "alice", "--name", "N", "--country", "US", "--map", "phone=ignore",
                       "--json")
    assert code == 0 and "phone" not in Audience.objects.get().key_coverage
    with pytest.raises(CommandError, match="unknown key"):
        call_command("import_audience", str(path), "--owner", "alice", "--name", "N", "--map", "email=ssn")
    with pytest.raises(CommandError, match="no column"):
        call_command("import_audience", str(path), "--owner", "alice", "--name", "N", "--map", "nope=email")
    with pytest.raises(CommandError, match="no user"):
        call_command("import_audience", str(path), "--owner", "nobody", "--name", "N")
    with pytest.raises(CommandError, match="country"):
        call_command("import_audience", str(path), "--owner", "alice", "--name", "N", "--country", "XX")


def test_reimport_into_an_existing_audience_keeps_its_mapping_and_person_key(user, tmp_path):
    first = tmp_path / "first.csv"
    first.write_text("Cust Ref,email\nC1,a@example.com\nC2,b@example.com\n")
    code, out, _ = run(str(first), "--owner", "alice", "--name", "N", "--country", "US",
                       "--map", "Cust Ref=external_id", "--person-key", "external_id", "--json")
    assert code == 0
    audience = Audience.objects.get()
    assert audience.person_key == "external_id" and audience.last_mapping == {"Cust Ref": "external_id",
                                                                            "email": "email"}
    second = tmp_path / "second.csv"
    second.write_text("Cust Ref,email\nC1,a.new@example.com\nC3,c@example.com\n")
    code, out, err = run(str(second), "--audience", str(audience.pk), "--json")
    assert code == 0 and err == ""
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["person_key"] == "external_id" and summary["imported"] == 2
    audience.refresh_from_db()
    assert audience.member_count == 2 and Audience.objects.count() == 1
    job = audience.imports.first()
    assert job.column_mapping == {"0": "external_id", "1": "email"}
    # C1 kept its identity (a changed email is an update), C2 left, C3 joined.
    assert (job.members_joined, job.members_changed, job.members_left) == (1, 1, 1)


def test_reimport_map_overrides_and_a_person_key_change_is_warned(user, tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("Cust Ref,email,phone\nC1,a@example.com,+14155550100\nC2,b@example.com,+14155550101\n")
    run(str(path), "--owner", "alice", "--name", "N", "--country", "US", "--map", "Cust Ref=external_id")
    audience = Audience.objects.get()
    assert audience.person_key == "external_id"
    code, out, err = run(str(path), "--audience", str(audience.pk), "--map", "phone=ignore", "--person-key", "email")
    assert code == 0
    assert "the person key changes from External ID to Email: all 2 members are re-identified" in err
    assert "column 'phone' (Phone) is not mapped: 2 members lose it" in err
    audience.refresh_from_db()
    assert audience.person_key == "email" and "phone" not in audience.key_coverage


def test_encoding_option_reads_the_file_that_way(user, tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes("email;nom\nmarie@free.fr;Lefèvre\n".encode("latin-1"))
    code, out, _ = run(str(path), "--owner", "alice", "--name", "N", "--country", "FR", "--json")
    assert json.loads(out.strip().splitlines()[-1])["encoding"] == "cp1252"
    assert "Western European (Windows-1252)" in out
    code, out, _ = run(str(path), "--owner", "alice", "--name", "M", "--country", "FR", "--encoding", "cp1250",
                       "--json")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["encoding"] == "cp1250"
    with pytest.raises(CommandError, match="--encoding"):
        call_command("import_audience", str(path), "--owner", "alice", "--name", "N", "--encoding", "klingon")


def test_audience_and_person_key_arguments_are_checked(user, other_user, tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("email\na@example.com\n")
    with pytest.raises(CommandError, match="no audience 999"):
        call_command("import_audience", str(path), "--audience", "999")
    theirs = Audience.objects.create(owner=other_user, name="Bob's", default_country="US")
    with pytest.raises(CommandError, match=f"no audience {theirs.pk} of alice"):
        call_command("import_audience", str(path), "--audience", str(theirs.pk), "--owner", "alice")
    with pytest.raises(CommandError, match="needs --owner and --name"):
        call_command("import_audience", str(path), "--owner", "alice")
    code, out, err = run(str(path), "--owner", "alice", "--name", "N", "--country", "US", "--person-key", "phone")
    assert code == 2 and "No column is mapped to Phone" in err
    assert not Audience.objects.filter(owner=user).exists()
