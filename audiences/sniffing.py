"""Reading an uploaded file's shape: its encoding, delimiter and header row, and a few values per column as read.

Encodings. BOMs first (UTF-8, UTF-16, UTF-32), then UTF-16 without a BOM (every other byte zero), then UTF-8:
a file that decodes as UTF-8, or mostly does (more valid multi-byte characters than invalid bytes: a UTF-8 file
with a few Latin-1 rows), is UTF-8, never anything else. Otherwise it is one of the single-byte encodings below,
chosen by how the text reads in each: every word holding a non-ASCII byte is decoded in every candidate and
scored: letters some language of the candidate's script uses count for it, a word whose accented letters all
belong to one language counts for it again; control characters, box-drawing and block characters, stray symbols
and a capital inside a lowercase word count against it. Windows-1252 wins outright when everything in it reads as
Western European (French, German, Spanish, Portuguese, Italian, Dutch, the Nordic languages ...), and wins ties:
charset-normalizer, which this replaces, scores cp1250 and cp1252 alike for a French file and picked cp1250
("Lefèvre" read as "Lefčvre").

The mapping page names the encoding in words (``encoding_label``) and lets the marketer pick another
(``ENCODING_CHOICES``), showing a few values per column as read (``sample_values``: read from the pending upload
each time, never stored).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from audiences import hashed
from audiences.uploads import UnusableFile
from platforms import matchkeys

SAMPLE_BYTES = 1024 * 1024  # what the sniffer reads
MAX_COLUMNS = 500
# Rows read to guess already-hashed columns and to show sample values on the mapping page.
SAMPLE_ROWS = 200
SAMPLES_PER_COLUMN = 3
SAMPLE_CHARS = 60

# Codec name (codecs.lookup(...).name) -> what the marketer reads. The single-byte ones, in order of preference.
UNICODE_LABELS = {
    "utf-8": "Unicode (UTF-8)",
    "utf-8-sig": "Unicode (UTF-8 with BOM)",
    "utf-16": "Unicode (UTF-16)",
    "utf-16-le": "Unicode (UTF-16, little-endian)",
    "utf-16-be": "Unicode (UTF-16, big-endian)",
    "utf-32": "Unicode (UTF-32)",
}
SINGLE_BYTE_LABELS = {
    "cp1252": "Western European (Windows-1252)",
    "iso8859-1": "Western European (ISO-8859-1 / Latin-1)",
    "iso8859-15": "Western European (ISO-8859-15 / Latin-9)",
    "cp850": "Western European (DOS, code page 850)",
    "mac-roman": "Western European (Mac OS Roman)",
    "cp1250": "Central European (Windows-1250)",
    "iso8859-2": "Central European (ISO-8859-2)",
    "cp1254": "Turkish (Windows-1254)",
    "cp1257": "Baltic (Windows-1257)",
    "cp1251": "Cyrillic (Windows-1251)",
    "cp1253": "Greek (Windows-1253)",
}
ENCODING_LABELS = {**UNICODE_LABELS, **SINGLE_BYTE_LABELS, "latin-1": SINGLE_BYTE_LABELS["iso8859-1"]}
# What the marketer may pick on the mapping page (and --encoding takes).
ENCODING_CHOICES = [(name, label) for name, label in {**UNICODE_LABELS, **SINGLE_BYTE_LABELS}.items()
                    if name not in ("utf-16-le", "utf-16-be")]
DELIMITER_LABELS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_DELIMITERS = (",", ";", "\t", "|")

_MAGIC = (
    (b"PK\x03\x04", "This is a ZIP archive (or an Excel .xlsx workbook), not a CSV file. "
     "Export or unzip it to CSV and upload that."),
    (b"PK\x05\x06", "This is an empty ZIP archive, not a CSV file."),
    (b"\x1f\x8b", "This is a gzip-compressed file, not a CSV file. Decompress it and upload the CSV."),
    (b"\xd0\xcf\x11\xe0", "This is an old Excel (.xls) workbook, not a CSV file. Save it as CSV and upload that."),
    (b"%PDF", "This is a PDF document, not a CSV file."),
    (b"BZh", "This is a bzip2-compressed file, not a CSV file."),
    (b"7z\xbc\xaf", "This is a 7-Zip archive, not a CSV file."),
)

# C0 controls but tab, line feed and carriage return; DEL; C1 controls. What a cell or a header must not hold.
CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
UNREADABLE_HEADER = ("The header row (the first line) holds control characters such as NUL bytes, so its column "
                     "names cannot be read. Open the file in a spreadsheet, save it as CSV (UTF-8) and upload that.")


def canonical_encoding(name: str) -> str:
    """The codec's canonical name ("latin-1" -> "iso8859-1"); ValueError for an unknown or unsupported one."""
    try:
        canonical = codecs.lookup(name).name
    except (LookupError, TypeError):
        raise ValueError(f"unknown encoding {name!r}") from None
    if canonical not in ENCODING_LABELS and name not in ENCODING_LABELS:
        raise ValueError(f"encoding {name!r} is not one of {', '.join(n for n, _ in ENCODING_CHOICES)}")
    return canonical if canonical in ENCODING_LABELS else name


def encoding_label(name: str) -> str:
    """An encoding in words: "Western European (Windows-1252)"."""
    if name in ENCODING_LABELS:
        return ENCODING_LABELS[name]
    try:
        return ENCODING_LABELS.get(codecs.lookup(name).name, name)
    except LookupError:
        return name


# ---------------------------------------------------------------------------------------------------------
# Encodings: how the text reads in each candidate


def _letters(*alphabets: str) -> frozenset:
    return frozenset("".join(alphabets))


# The non-ASCII letters of each language (lowercase), by the script group a single-byte encoding serves.
_LANGUAGES = {
    "western": {
        "french": "àâæçéèêëîïôœùûüÿ", "german": "äöüß", "spanish": "áéíñóúüªº", "portuguese": "áâãàçéêíóôõúªº",
        "italian": "àèéìíîòóùú", "catalan": "àçèéíïòóúü", "dutch": "áéíóúàèëïöüĳ", "danish": "æøåé",
        "norwegian": "æøåéèêóòâô", "swedish": "åäöé", "finnish": "åäöšž", "icelandic": "áðéíóúýþæö",
        "irish": "áéíóú", "galician": "áéíóúñü", "basque": "ñü",
    },
    "central": {
        "czech": "áčďéěíňóřšťúůýž", "slovak": "áäčďéíĺľňóôŕšťúýž", "polish": "ąćęłńóśźż",
        "hungarian": "áéíóöőúüű", "croatian": "čćđšž", "slovene": "čšž", "romanian": "ăâîșțşţ",
        "german": "äöüß", "albanian": "çë", "sorbian": "čćěłńóřšźž",
    },
    "baltic": {"lithuanian": "ąčęėįšųūž", "latvian": "āčēģīķļņšūž", "estonian": "äõöüšž", "german": "äöüß"},
    # "İ" (dotted capital I) lowercases to two characters: it stands for itself.
    "turkish": {"turkish": "çğıİöşüâîû", "german": "äöüß", "french": "àâçéèêëîïôùûü", "spanish": "áéíñóúü"},
    "cyrillic": {
        "russian": "абвгдеёжзийклмнопрстуфхцчшщъыьэюя", "ukrainian": "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя",
        "belarusian": "абвгдеёжзійклмнопрстуўфхцчшыьэюя", "bulgarian": "абвгдежзийклмнопрстуфхцчшщъьюя",
        "serbian": "абвгдђежзијклљмнњопрстћуфхцчџш", "macedonian": "абвгдѓежзѕијклљмнњопрстќуфхцчџш",
    },
    "greek": {"greek": "αβγδεζηθικλμνξοπρσςτυφχψωάέήίόύώϊϋΐΰ"},
}
_GROUP_OF = {
    "cp1252": "western", "iso8859-1": "western", "iso8859-15": "western", "cp850": "western", "mac-roman": "western",
    "cp1250": "central", "iso8859-2": "central", "cp1257": "baltic", "cp1254": "turkish", "cp1251": "cyrillic",
    "cp1253": "greek",
}
_GROUP_LETTERS = {group: _letters(*languages.values()) for group, languages in _LANGUAGES.items()}
_GROUP_ALPHABETS = {group: [frozenset(a) for a in languages.values()] for group, languages in _LANGUAGES.items()}
# Punctuation and symbols ordinary text carries: they speak for no encoding, and against none. Those of the first
# set also stand inside words (l’école, D’Artagnan, Catalan l·l); the others not before a lowercase letter ("£ukasz"
# and "Wi¶niewski" are Polish read as Latin-1).
_IN_WORD_MARKS = frozenset("’‘·\u00a0")
_COMMON_MARKS = _IN_WORD_MARKS | frozenset("«»‚“”„–—…•°€£¥¢©®™§¶†‡‰¿¡×÷½¼¾²³¹\u2009\u202f")
# A word holding a non-ASCII byte: the letters around it come along, so it can be read as a word.
_HIGH_WORD = re.compile(rb"[A-Za-z\x80-\xff]*[\x80-\xff][A-Za-z\x80-\xff]*")


def _char_score(ch: str, letters: frozenset, previous: str, following: str) -> int:
    """How well one non-ASCII character of a word reads in a script group (see the module docstring)."""
    code = ord(ch)
    if 0x2500 <= code <= 0x25FF:  # box drawing, block elements, geometric shapes (DOS code pages)
        return -10
    category = unicodedata.category(ch)
    if category[0] == "C":  # a control character, or no character at all
        return -10
    if category[0] == "L":
        score = 2 if ch.lower() in letters or ch in letters else -3
        if previous.islower() and ch.isupper():
            score -= 2  # "LefŠvre": a capital inside a lowercase word is a misread letter
        return score
    if ch in _IN_WORD_MARKS or (ch in _COMMON_MARKS and not following.islower()):
        return 0
    return -2  # ¤ ¦ ¨ ´ ¸ ˘ ˇ, or a symbol before a lowercase letter: where a letter was misread


def _word_score(word: str, group: str) -> int:
    letters, score = _GROUP_LETTERS[group], 0
    accented = set()
    for index, ch in enumerate(word):
        if ord(ch) > 127:
            score += _char_score(ch, letters, word[index - 1] if index else "", word[index + 1:index + 2])
            if ch.isalpha():
                accented.add(ch if ch == "İ" else ch.lower())
    if accented:
        # A word's accented letters should all belong to one language ("Dvoøák" belongs to none).
        score += 2 if any(accented <= alphabet for alphabet in _GROUP_ALPHABETS[group]) else -2
    return score


def _reads_perfectly(word: str, group: str) -> bool:
    """Every non-ASCII character of the word reads in the group at its best: letters of one of its languages, no
    capital inside lowercase, marks where marks go."""
    letters, accented = _GROUP_LETTERS[group], set()
    for index, ch in enumerate(word):
        if ord(ch) <= 127:
            continue
        previous, following = (word[index - 1] if index else ""), word[index + 1:index + 2]
        if ch.isalpha():
            if _char_score(ch, letters, previous, following) != 2:
                return False
            accented.add(ch.lower())
        elif _char_score(ch, letters, previous, following) != 0:
            return False
    return not accented or any(accented <= alphabet for alphabet in _GROUP_ALPHABETS[group])


# Distinct high-byte words scored per candidate (the most frequent): enough to tell, cheap on a 1 MB sample.
_WORDS_SCORED = 2_000


def _score(words: list[tuple[bytes, int]], encoding: str) -> int:
    group = _GROUP_OF[encoding]
    return sum(_word_score(raw.decode(encoding), group) * count for raw, count in words)


def single_byte_encoding(sample: bytes) -> str:
    """The single-byte encoding the sample reads best in (see the module docstring)."""
    counted = Counter(_HIGH_WORD.findall(sample))
    if not counted:
        return "cp1252"
    high = bytes(sorted({byte for word in counted for byte in word if byte > 127}))
    words = counted.most_common(_WORDS_SCORED)
    scores = {}
    for encoding in SINGLE_BYTE_LABELS:
        try:
            high.decode(encoding)  # single-byte: every byte on its own
        except UnicodeDecodeError:
            continue
        if encoding == "cp1252" and _all_western(words):
            return "cp1252"
        scores[encoding] = _score(words, encoding)
    # max() keeps the first of equal scores: the order of SINGLE_BYTE_LABELS is the order of preference.
    return max(scores, key=scores.__getitem__) if scores else "iso8859-1"


def _all_western(words: list[tuple[bytes, int]]) -> bool:
    """Whether every high-byte word reads, in Windows-1252, as Western European: letters of its languages (all of a
    word's accented letters from one language) and common punctuation, nothing else."""
    return all(_reads_perfectly(raw.decode("cp1252"), "western") for raw, _ in words)


def _mostly_utf8(sample: bytes) -> bool:
    """Valid UTF-8, or more valid multi-byte characters than invalid bytes (a UTF-8 file with a few rows in
    another encoding: those rows are rejected by the import, the rest reads right)."""
    try:
        # final=False: the sample may end in the middle of a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return True
    except UnicodeDecodeError:
        pass
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(sample, final=False)
    invalid = text.count("\ufffd")
    valid = sum(1 for ch in text if ord(ch) > 127) - invalid
    return valid > 0 and valid >= invalid


def detect_encoding(sample: bytes) -> str:
    """The codec for a file starting with ``sample``: BOMs first, then UTF-16 without BOM, UTF-8, and the single-byte
    encoding the text reads best in."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample[:4096]:
        head = sample[:4096]
        half = max(len(head) // 2, 1)
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if odd > 0.4 * half and even < 0.05 * half:
            return "utf-16-le"
        if even > 0.4 * half and odd < 0.05 * half:
            return "utf-16-be"
    if _mostly_utf8(sample):
        return "utf-8"
    return single_byte_encoding(sample)


# ---------------------------------------------------------------------------------------------------------
# Delimiter, header, mapping


def _looks_binary(text: str) -> bool:
    if not text:
        return False
    controls = sum(1 for ch in text[:65536] if ch < " " and ch not in "\t\r\n")
    return controls > max(8, len(text[:65536]) // 50)


def _looks_html(text: str) -> bool:
    head = text.lstrip()[:2048].lower()
    return head.startswith(("<!doctype html", "<html", "<?xml", "<head", "<body")) or "<html" in head[:512]


def detect_delimiter(lines: list[str]) -> str:
    """Comma, semicolon, tab or pipe: the one that splits the first records into the most columns, most
    consistently (quoted fields respected). csv.Sniffer alone is fooled by commas inside fields."""
    text = "".join(lines)
    best, best_score = ",", (0.0, 0)
    for delimiter in _DELIMITERS:
        try:
            counts = [len(row) for row in islice(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), 50)
                      if row]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        header_width = counts[0]
        agreement = sum(1 for c in counts if c == header_width) / len(counts)
        score = (agreement, header_width)
        if score > best_score:
            best, best_score = delimiter, score
    if best_score == (0.0, 0):
        try:
            return csv.Sniffer().sniff(text[:65536], delimiters="".join(_DELIMITERS)).delimiter
        except csv.Error:
            return ","
    return best


def guess_mapping(headers: list[str], rows: list[list[str]] | None = None) -> dict[str, str]:
    """Auto-map headers to match keys ({str(index): key}); a key goes to its first column only. A column whose
    values are all SHA-256 hex digests maps to the already-hashed form of its key ("email_sha256")."""
    mapping, used = {}, set()
    for index, header in enumerate(headers):
        values = [row[index] for row in rows or () if index < len(row) and row[index].strip()]
        key = hashed.guess_key(header, values)
        if key and hashed.base_key(key) not in used:
            mapping[str(index)] = key
            used.add(hashed.base_key(key))
    return mapping


def remembered_mapping(headers: list[str], remembered: dict[str, str], guessed: dict[str, str]) -> dict[str, str]:
    """The mapping of a re-import: each column the audience's last import mapped (by header, "" for one it
    ignored) keeps that choice; the others keep the guess unless it takes a key a remembered column holds."""
    lowered = {header.strip().lower(): key for header, key in (remembered or {}).items()}
    mapping: dict[str, str] = {}
    taken = {hashed.base_key(lowered[h.strip().lower()]) for h in headers
             if lowered.get(h.strip().lower())}
    for index, header in enumerate(headers):
        label = header.strip().lower()
        if label in lowered:
            mapping[str(index)] = lowered[label]
        else:
            guess = guessed.get(str(index), "")
            mapping[str(index)] = "" if guess and hashed.base_key(guess) in taken else guess
            if mapping[str(index)]:
                taken.add(hashed.base_key(guess))
    return mapping


def _looks_like_data(cells: list[str]) -> bool:
    for cell in cells:
        value = cell.strip()
        if "@" in value and "." in value:
            return True
        digits = sum(ch.isdigit() for ch in value)
        if value and digits >= 6 and digits >= len(value) * 0.6:
            return True
        if hashed.is_digest(value):
            return True
    return False


@dataclass
class Sniffed:
    encoding: str
    delimiter: str
    headers: list[str]
    mapping: dict[str, str] = field(default_factory=dict)  # str(column index) -> key (auto-detected)
    # The first records as read (for the already-hashed guess); never stored.
    rows: list[list[str]] = field(default_factory=list, repr=False)


def sniff(path: Path | str, *, encoding: str | None = None, sample_bytes: int = SAMPLE_BYTES) -> Sniffed:
    """Encoding (detected, or the one given), delimiter and header row of the file at ``path``; UnusableFile with
    one clear message when it cannot be a CSV (empty, binary, archive, HTML, no or unreadable header, too many
    columns)."""
    with open(path, "rb") as raw:
        sample = raw.read(sample_bytes)
        at_end = not raw.read(1)
    if not sample.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise UnusableFile("The file is empty.")
    for magic, message in _MAGIC:
        if sample.startswith(magic):
            raise UnusableFile(message)
    encoding = canonical_encoding(encoding) if encoding else detect_encoding(sample)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=at_end)
    if _looks_binary(text):
        raise UnusableFile("This file is not text (it looks like a binary file), so it cannot be a CSV.")
    if _looks_html(text):
        raise UnusableFile("This file is a web page (HTML), not a CSV. Download the data itself as CSV.")
    # Whole lines only: the last one in the sample may be cut.
    lines = text.splitlines(keepends=True)
    if not at_end and len(lines) > 1:
        lines = lines[:-1]
    if len(lines) == 1 and not at_end and len(lines[0]) >= len(text):
        raise UnusableFile("The first line is over 1 MB long: this is not a CSV header row.")
    delimiter = detect_delimiter(lines[:200])
    records = _first_records(lines[:SAMPLE_ROWS + 1], delimiter)
    headers = [h.strip().lstrip("\ufeff") for h in records[0]] if records else []
    if any(CONTROL_CHARS.search(h) for h in headers):
        raise UnusableFile(UNREADABLE_HEADER)
    if not any(headers):
        raise UnusableFile("The first row is empty: the file needs a header row naming its columns.")
    if len(headers) > MAX_COLUMNS:
        raise UnusableFile(f"The file has {len(headers):,} columns; at most {MAX_COLUMNS} are supported.")
    rows = [row for row in records[1:] if any(cell.strip() for cell in row)]
    mapping = guess_mapping(headers, rows)
    if not mapping and _looks_like_data(headers):
        raise UnusableFile(
            "The first row looks like data, not column names. Add a header row (for example: email,phone,zip)."
        )
    if len(lines) < 2 and at_end:
        raise UnusableFile("The file has a header row but no data rows.")
    return Sniffed(encoding=encoding, delimiter=delimiter, headers=headers, mapping=mapping, rows=rows)


def _first_records(lines: list[str], delimiter: str) -> list[list[str]]:
    """The records of ``lines``, up to the first one the csv module cannot read (a field over its size limit)."""
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO("".join(lines), newline=""), delimiter=delimiter)
    while True:
        try:
            record = next(reader, None)
        except csv.Error:
            break
        if record is None:
            break
        records.append(record)
    return records


def column_label(headers: list[str], index: int) -> str:
    header = headers[index] if index < len(headers) else ""
    return header or f"column {index + 1}"


def shown(value: str) -> str:
    """A cell as the mapping page shows it: control characters made visible (␀ for NUL ...), cut to a length."""
    value = CONTROL_CHARS.sub(lambda m: chr(0x2400 + ord(m.group())) if ord(m.group()) < 32 else "\ufffd", value)
    return value if len(value) <= SAMPLE_CHARS else value[:SAMPLE_CHARS - 1] + "…"


def sample_values(rows: list[list[str]], width: int, per_column: int = SAMPLES_PER_COLUMN) -> list[list[str]]:
    """Up to ``per_column`` distinct non-empty values of each column of ``rows`` (the first records as read)."""
    samples: list[list[str]] = [[] for _ in range(width)]
    for row in rows:
        for index, cell in enumerate(row[:width]):
            value = cell.strip()
            if value and len(samples[index]) < per_column and shown(value) not in samples[index]:
                samples[index].append(shown(value))
    return samples


def matched_key_label(key: str) -> str:
    return hashed.LABELS.get(key) or matchkeys.KEY_LABELS.get(key, key)
