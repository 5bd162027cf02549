"""Encodings a person can check: Western European files read as Windows-1252 (not cp1250), every other Western
language too, UTF-8 never read as anything else, and the stored hashes are those of the correctly read values."""

import codecs

import pytest

from audiences import imports, sniffing
from audiences.models import ImportJob
from audiences.storage import all_records
from platforms import matchkeys

# (header, rows) per language: names, cities and emails with the letters that language uses.
FRENCH = ("prenom;nom;email;ville", [
    ("Éloïse", "Lefèvre", "marie.lefèvre@free.fr", "Besançon"),
    ("Gaëlle", "Núñez", "gaelle.nunez@orange.fr", "Orléans"),
    ("Jérôme", "Dubois", "jerome@laposte.net", "Saint-Étienne"),
    ("Françoise", "Lemaître", "f.lemaitre@free.fr", "Nîmes"),
])
LANGUAGES = {
    "german": ("vorname;nachname;email;stadt", [
        ("Jürgen", "Müller", "jürgen.müller@web.de", "Köln"), ("Björn", "Größe", "b.groesse@gmx.de", "Düsseldorf"),
        ("Käthe", "Straßer", "kaethe@t-online.de", "München")]),
    "spanish": ("nombre;apellido;email;ciudad", [
        ("José", "Núñez", "jose.nuñez@correo.es", "A Coruña"), ("Begoña", "Ibáñez", "b.ibanez@correo.es", "León"),
        ("Íñigo", "Muñoz", "inigo@correo.es", "Cádiz")]),
    "portuguese": ("first_name;last_name;email;city", [
        ("João", "Gonçalves", "joão.goncalves@sapo.pt", "São Paulo"),
        ("Conceição", "Simões", "c.simoes@sapo.pt", "Brasília"), ("Antônio", "Guimarães", "a@sapo.pt", "Lisboa")]),
    "nordic": ("first_name;last_name;email;city", [
        ("Søren", "Bjørnsen", "søren@mail.dk", "Tromsø"), ("Åsa", "Jönsson", "asa@mail.se", "Malmö"),
        ("Guðrún", "Þórsdóttir", "gudrun@mail.is", "Reykjavík"), ("Ærle", "Ågren", "aa@mail.dk", "Århus")]),
}


def _text(header, rows) -> str:
    return header + "\n" + "".join(";".join(row) + "\n" for row in rows)


def _sniff(tmp_path, data: bytes):
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    return imports.sniff(path)


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
@pytest.mark.parametrize("language", ["french", *LANGUAGES])
def test_western_european_files_read_as_windows_1252(tmp_path, language, encoding):
    header, rows = FRENCH if language == "french" else LANGUAGES[language]
    sniffed = _sniff(tmp_path, _text(header, rows).encode(encoding))
    assert sniffed.encoding == "cp1252"
    assert sniffing.encoding_label(sniffed.encoding) == "Western European (Windows-1252)"
    # The values read are the ones written.
    assert [tuple(row) for row in sniffed.rows] == rows


def test_the_issue_file_is_not_read_as_cp1250(tmp_path):
    """The file of the issue: Lefèvre was read as Lefčvre, Éloïse as Éloďse."""
    data = "prenom;nom;email\nÉloïse;Lefèvre;marie.lefèvre@free.fr\nNúñez;Ana;a@b.fr\n".encode("latin-1")
    sniffed = _sniff(tmp_path, data)
    assert sniffed.encoding == "cp1252" and sniffed.rows[0] == ["Éloïse", "Lefèvre", "marie.lefèvre@free.fr"]


def test_windows_1252_only_characters_are_read(tmp_path):
    data = "nom;ville\nBœuf;Sainte-Hélène\nD’Artagnan;Nîmes\n".encode("cp1252")
    sniffed = _sniff(tmp_path, data)
    assert sniffed.encoding == "cp1252" and sniffed.rows[0][0] == "Bœuf" and sniffed.rows[1][0] == "D’Artagnan"


@pytest.mark.parametrize(("text", "encoding"), [
    ("jmeno;mesto\nDvořák;Plzeň\nČerný;Brno\nRůžička;České Budějovice\n", "cp1250"),
    ("imie;miasto\nŁukasz Wiśniewski;Kraków\nWójcik;Łódź\nZieliński;Gdańsk\n", "cp1250"),
    ("imie;miasto\nŁukasz Wiśniewski;Kraków\nWójcik;Łódź\nZieliński;Gdańsk\n", "iso8859-2"),
    ("имя;город\nИванов Петр;Москва\nСмирнова;Санкт-Петербург\n", "cp1251"),
    ("ad;sehir\nŞükrü Öztürk;İstanbul\nAyşe Yılmaz;Çanakkale\n", "cp1254"),
    ("vardas;miestas\nJonas Kazlauskas;Šiauliai\nŽemaitė;Klaipėda\n", "cp1257"),
    ("nom;ville\nLefèvre;Besançon\nÉloïse;Orléans\n", "cp850"),  # a DOS export
    ("nom;ville\nLefèvre;Besançon\nÉloïse;Orléans\n", "mac-roman"),
], ids=["czech-1250", "polish-1250", "polish-8859-2", "russian-1251", "turkish-1254", "lithuanian-1257",
        "french-dos-850", "french-mac-roman"])
def test_other_scripts_still_read_in_their_own_encoding(tmp_path, text, encoding):
    sniffed = _sniff(tmp_path, text.encode(encoding))
    assert sniffed.encoding == codecs.lookup(encoding).name
    assert "\n".join(";".join(row) for row in [sniffed.headers, *sniffed.rows]) + "\n" == text


@pytest.mark.parametrize("text", [
    "email;nom\nmarie.lefèvre@free.fr;Lefèvre\n",
    "nom\nÃ©lodie\n",  # looks like mojibake, but it is valid UTF-8: read as written
    "nom\n" + "Zoë\n" * 50 + "Łódź 日本 😀\n",
])
def test_utf8_is_never_read_as_anything_else(tmp_path, text):
    assert _sniff(tmp_path, text.encode()).encoding == "utf-8"


def test_utf8_with_a_stray_latin1_row_stays_utf8(tmp_path):
    data = ("nom\n" + "Zoë Françoise\n" * 20).encode() + "Amélie\n".encode("latin-1")
    assert _sniff(tmp_path, data).encoding == "utf-8"


def _prepared(row: dict, region="FR") -> dict:
    return matchkeys.prepare_record(row, default_region=region).stored


def _import(user, audience, tmp_path, data: bytes, *, encoding=None):
    path = tmp_path / "customers.csv"
    path.write_bytes(data)
    job = imports.create_import_from_path(owner=user, audience=audience, path=path, encoding=encoding)
    assert job.status == ImportJob.Status.UPLOADED, job.error_message
    imports.start_import(job, enqueue=False)
    return imports.run_import(job.pk)


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
@pytest.mark.parametrize("language", ["french", *LANGUAGES])
def test_round_trip_stores_the_hashes_of_the_values_as_written(user, tmp_path, language, encoding):
    from audiences.models import Audience

    header, rows = FRENCH if language == "french" else LANGUAGES[language]
    audience = Audience.objects.create(owner=user, name=language, default_country="FR")
    job = _import(user, audience, tmp_path, _text(header, rows).encode(encoding))
    assert job.status == ImportJob.Status.SUCCEEDED and job.rows_imported == len(rows) and job.rows_rejected == 0
    assert job.encoding == "cp1252"
    stored = sorted((record for _, _, record in all_records(audience.pk)), key=lambda r: r["e"])
    expected = sorted((_prepared({"first_name": first, "last_name": last, "email": email, "city": city})
                       for first, last, email, city in rows), key=lambda r: r["e"])
    for got, want in zip(stored, expected, strict=True):
        for key in ("e", "fn", "ln", "ct", "fi"):
            assert got[key] == want[key], key


def test_the_import_names_its_encoding_in_words(user, audience, tmp_path):
    job = _import(user, audience, tmp_path, _text(*FRENCH).encode("latin-1"))
    assert job.encoding_label == "Western European (Windows-1252)"
    assert imports.summary(job)["encoding"] == "cp1252"


def test_a_chosen_encoding_reads_the_file_that_way(user, audience, tmp_path):
    data = _text(*FRENCH).encode("latin-1")
    job = _import(user, audience, tmp_path, data, encoding="cp1250")
    assert job.encoding == "cp1250"
    # Read as Central European, "Lefèvre" is "Lefčvre": the stored hash is that of the misread name.
    lefcvre = _prepared({"last_name": "Lefčvre"})["ln"]
    assert lefcvre in {record.get("ln") for _, _, record in all_records(audience.pk)}


def test_unknown_encodings_are_refused(user, audience, tmp_path):
    with pytest.raises(ValueError, match="encoding"):
        sniffing.canonical_encoding("klingon")
    with pytest.raises(ValueError, match="not one of"):
        sniffing.canonical_encoding("shift_jis")
    path = tmp_path / "f.csv"
    path.write_bytes(b"email\na@example.com\n")
    job = imports.create_import_from_path(owner=user, audience=audience, path=path, encoding="klingon")
    assert job.status == ImportJob.Status.FAILED and "encoding" in job.error_message


def test_read_as_another_encoding_changes_the_samples_not_the_job(user, audience, tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(_text(*FRENCH).encode("latin-1"))
    job = imports.create_import_from_path(owner=user, audience=audience, path=path)
    samples = sniffing.sample_values(imports.read_as(job, job.encoding).rows, 4)
    assert samples[1][:1] == ["Lefèvre"] and samples[3][:2] == ["Besançon", "Orléans"]
    other = imports.read_as(job, "cp1250")
    assert sniffing.sample_values(other.rows, 4)[1][:1] == ["Lefčvre"]
    job.refresh_from_db()
    assert job.encoding == "cp1252"  # reading another way saves nothing
    imports.change_encoding(job, other)
    job.refresh_from_db()
    assert job.encoding == "cp1250" and job.column_mapping == {"0": "first_name", "1": "last_name", "2": "email",
                                                               "3": "city"}


def test_detection_of_a_1mb_sample_is_quick(tmp_path):
    import time

    names = ["Lefèvre", "Éloïse", "Müller", "Núñez", "Gonçalves", "Søren", "Ibáñez"]
    data = ("nom;ville\n" + "".join(f"{names[i % len(names)]}{i};Besançon{i % 97}\n" for i in range(60_000)))
    sample = data.encode("cp1252")[:imports.SAMPLE_BYTES]
    started = time.perf_counter()
    assert sniffing.detect_encoding(sample) == "cp1252"
    assert time.perf_counter() - started < 2.0
