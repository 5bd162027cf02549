"""The malformed-upload corpus (issue 7, "Bad input"): generated, never checked in.

``CASES`` maps a case name to (builder, expectation). A builder writes the file into a directory and
returns its path; an expectation is ("fail", text the one message contains) or ("ok", None): imported,
possibly with rejected rows.
"""

from __future__ import annotations

import codecs
import gzip
import io
import random
import zipfile
from pathlib import Path

GOOD_ROWS = "".join(f"person{i}@example.com,+1415555{i:04d},Zoë\n" for i in range(5))
HEADER = "email,phone,first_name\n"


def _bytes(data: bytes, name="upload.csv"):
    def build(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(data)
        return path

    return build


def _text(text: str, encoding="utf-8", name="upload.csv"):
    return _bytes(text.encode(encoding), name)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _zip_bomb(directory: Path) -> Path:
    # 200 MB of zeros compresses to ~200 KB: never inflate it.
    buffer = io.BytesIO()
    with (zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
          archive.open("data.csv", "w") as member):
        block = b"0" * (1024 * 1024)
        for _ in range(200):
            member.write(block)
    path = directory / "bomb.csv"
    path.write_bytes(buffer.getvalue())
    return path


def _big_single_field(size: int, quoted: bool = False):
    def build(directory: Path) -> Path:
        path = directory / "big.csv"
        block = b"A" * (1024 * 1024)
        with open(path, "wb") as out:
            out.write(HEADER.encode() + GOOD_ROWS.encode())
            out.write(b'"' if quoted else b"")
            written = 0
            while written < size:
                out.write(block[: size - written])
                written += len(block)
            out.write(b'"' if quoted else b"")
            out.write(b",+14155550100,Big\n" + GOOD_ROWS.replace("person", "after").encode())
        return path

    return build


def _random_binary(directory: Path) -> Path:
    path = directory / "random.csv"
    path.write_bytes(random.Random(7).randbytes(64 * 1024))
    return path


FAIL, OK = "fail", "ok"

CASES = {
    "empty": (_bytes(b""), (FAIL, "empty")),
    "whitespace-only": (_bytes(b"  \n\n\t\r\n"), (FAIL, "empty")),
    "bom-only": (_bytes(codecs.BOM_UTF8), (FAIL, "empty")),
    "random-binary": (_random_binary, (FAIL, "binary")),
    "elf-binary": (_bytes(b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 40), (FAIL, "binary")),
    "png-image": (_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10), (FAIL, "binary")),
    "zip-archive": (_bytes(_zip({"customers.csv": (HEADER + GOOD_ROWS).encode()})), (FAIL, "ZIP")),
    "xlsx-workbook": (_bytes(_zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}),
                             "export.csv"), (FAIL, "Excel")),
    "zip-bomb-renamed-csv": (_zip_bomb, (FAIL, "ZIP")),
    "gzip": (_bytes(gzip.compress((HEADER + GOOD_ROWS).encode())), (FAIL, "gzip")),
    "old-excel-xls": (_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512), (FAIL, "Excel")),
    "pdf": (_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"), (FAIL, "PDF")),
    "html-page": (_text("<!DOCTYPE html>\n<html><head><title>Export</title></head><body><table><tr><td>email"
                        "</td></tr><tr><td>a@example.com</td></tr></table></body></html>\n"), (FAIL, "HTML")),
    "html-lowercase-with-space": (_text("\n  <html>\n<body>email,phone</body></html>"), (FAIL, "HTML")),
    "xml": (_text('<?xml version="1.0"?><rows><row email="a@example.com"/></rows>'), (FAIL, "HTML")),
    "json": (_text('[{"email": "a@example.com", "phone": "+14155550100"}]\n'), (FAIL, "looks like data")),
    "no-header": (_text(GOOD_ROWS), (FAIL, "looks like data")),
    "header-only": (_text(HEADER), (FAIL, "no data rows")),
    "header-then-blank-lines": (_text(HEADER + "\n\n\n"), (FAIL, "no data rows")),
    "empty-header-cells": (_text(",,,\na@example.com,,,\n"), (FAIL, "header row")),
    "no-mappable-column": (_text("foo,bar\n1,2\n3,4\n"), (FAIL, "Map at least one column")),
    "10000-columns": (_text(",".join(f"c{i}" for i in range(10_000)) + "\n" + "x," * 9_999 + "x\n"),
                      (FAIL, "columns")),
    "huge-single-line": (_text("email," + "x" * (3 * 1024 * 1024)), (FAIL, "over 1 MB")),
    "huge-data-line": (_bytes(HEADER.encode() + b"a@example.com," + b"y" * (3 * 1024 * 1024) + b"\n"
                              + GOOD_ROWS.encode()), (OK, None)),
    "200mb-single-field": (_big_single_field(200 * 1024 * 1024), (OK, None)),
    "quoted-field-over-limit": (_big_single_field(300 * 1024, quoted=True), (OK, None)),
    "unterminated-quote-at-end": (_text(HEADER + GOOD_ROWS + 'last@example.com,"+1415555'), (OK, None)),
    "unterminated-quote-mid-file": (_text(HEADER + 'x@example.com,"+1 415\n' + GOOD_ROWS), (OK, None)),
    "nul-bytes-in-cells": (_text(HEADER + "a\x00b@example.com,\x00\x00,Zo\x00ë\n" + GOOD_ROWS), (OK, None)),
    "nul-bytes-everywhere": (_bytes(b"\x00".join(bytes([c]) for c in (HEADER + GOOD_ROWS).encode())),
                             (OK, None)),  # reads as UTF-16-BE-ish text: must not crash
    "duplicate-headers": (_text("email,email,phone,phone\n" + "a@example.com,b@example.com,,\n"), (OK, None)),
    "mixed-encodings": (_bytes((HEADER + GOOD_ROWS).encode() * 40000 + "zoë@example.com,,Zoë\n".encode("latin-1")),
                        (OK, None)),
    "latin-1": (_text(HEADER + "zoe@example.com,,Zoë Françoise\n", "latin-1"), (OK, None)),
    "utf-16-with-bom": (_text(HEADER + GOOD_ROWS, "utf-16"), (OK, None)),
    "utf-16-le-no-bom": (_text(HEADER + GOOD_ROWS, "utf-16-le"), (OK, None)),
    "utf-32": (_text(HEADER + GOOD_ROWS, "utf-32"), (OK, None)),
    "formula-injection-cells": (_text(HEADER + '=CMD("calc"),+1-555,@SUM(A1)\n-2+3,=1+1,=HYPERLINK("x")\n'
                                      + GOOD_ROWS), (OK, None)),
    "formula-injection-headers": (_text('=HYPERLINK("http://evil"),phone\n=1+1,+14155550100\nnot-an-email,12\n'),
                                  (OK, None)),
    "crlf-line-endings": (_text((HEADER + GOOD_ROWS).replace("\n", "\r\n")), (OK, None)),
    "cr-only-line-endings": (_text((HEADER + GOOD_ROWS).replace("\n", "\r")), (OK, None)),
    "ragged-rows": (_text(HEADER + "a@example.com\nb@example.com,+14155550100,Zoë,extra,more,cells\n,,\n"),
                    (OK, None)),
    "all-rows-invalid": (_text("email\nnope\nstill nope\n@\n"), (FAIL, "None of")),
    "control-characters": (_text(HEADER + "\x1b[31mred@example.com\x1b[0m,\x07,\x08\n" + GOOD_ROWS), (OK, None)),
    "semicolon-header-comma-rows": (_text("email;phone\na@example.com,+14155550100\n"), (FAIL, "None of")),
    "quoted-newlines": (_text('email,first_name\n"a@example.com","Line\none"\n"b@example.com","x\r\ny"\n'),
                        (OK, None)),
    "emoji-and-astral": (_text(HEADER + "smile@example.com,,😀 Zoë 𝔘\n"), (OK, None)),
    "bom-in-the-middle": (_text(HEADER + "\ufeffa@example.com,,\n" + GOOD_ROWS), (OK, None)),
    "line-separator-chars": (_text(HEADER + "a@example.com,,Zo\u2028ë\u2029\n"), (OK, None)),
    "very-long-header-name": (_text("email," + "h" * 5000 + "\na@example.com,x\nbad,y\n"), (OK, None)),
    "only-delimiters": (_text("email,phone\n,\n,,,\n;;;\n"), (FAIL, "None of")),
    "tsv-named-csv": (_text((HEADER + GOOD_ROWS).replace(",", "\t")), (OK, None)),
}
