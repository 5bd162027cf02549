"""Reading a stored upload as CSV records, in chunks, in bounded memory (the import's reader).

Physical lines are read at most ``max_line_chars`` at a time (a longer line is skipped in pieces and stands as one
marker record, ``OVERSIZE_MARK``), fields are capped by the csv module's field size limit, and a record the csv
module cannot read becomes a ``BadRecord`` in its place, so one bad record never stops the file. The line reader
notes whether a chunk held undecodable bytes or control characters, so the import looks for them only then.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from itertools import islice

from audiences.sniffing import CONTROL_CHARS

# A marker the line reader yields in place of an over-long line (private-use characters never in real data).
OVERSIZE_MARK = "\ue000\ue001oversize\ue001\ue000"
FIELD_TOO_LARGE = "field too large"
# Undecodable bytes (U+FFFD after decoding with errors="replace") or control characters somewhere in a line.
_ODD_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]").search


class LineReader:
    """Physical lines of a text stream, each at most ``max_chars``: a longer line is consumed in pieces
    and replaced by a marker line, so no line is ever held whole in memory. Notes whether a line held
    undecodable bytes (U+FFFD after decoding with errors="replace") or control characters."""

    def __init__(self, text: io.TextIOBase, max_chars: int):
        self.text, self.max_chars = text, max_chars
        self.saw_bad_text = False
        self.saw_controls = False

    def __iter__(self) -> Iterator[str]:
        readline, limit, odd = self.text.readline, self.max_chars, _ODD_TEXT
        while line := readline(limit):
            if len(line) == limit and not line.endswith(("\n", "\r")):
                while (rest := readline(limit)) and len(rest) == limit and not rest.endswith(("\n", "\r")):
                    pass
                yield OVERSIZE_MARK + "\n"
                continue
            if odd(line) is not None:
                if "\ufffd" in line:
                    self.saw_bad_text = True
                if CONTROL_CHARS.search(line) is not None:
                    self.saw_controls = True
            yield line


class BadRecord(list):
    """Stands in (as an empty row) for a record the CSV reader could not read."""

    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason


class RecordReader:
    """Data records of the stored file in chunks (lists of cell lists), header skipped. The csv reader
    is driven from C (list.extend over islice); a record it cannot read becomes a BadRecord in place."""

    def __init__(self, raw, *, encoding: str, delimiter: str, field_limit: int, max_line_chars: int):
        self.text = io.TextIOWrapper(raw, encoding=encoding or "utf-8", errors="replace", newline="")
        self.lines = LineReader(self.text, max_line_chars)
        self.reader = csv.reader(self.lines, delimiter=delimiter or ",")
        self.field_limit, self.previous_limit = field_limit, None

    def __enter__(self):
        self.previous_limit = csv.field_size_limit(self.field_limit)
        self.read(1)  # the header row
        return self

    def __exit__(self, *exc):
        csv.field_size_limit(self.previous_limit)
        if not self.text.buffer.closed:
            self.text.detach()  # leave the binary file open: the caller reads its position for progress

    def read(self, n: int) -> list:
        out: list = []
        while len(out) < n:
            try:
                out.extend(islice(self.reader, n - len(out)))
                break  # n records, or the end of the file
            except csv.Error as exc:  # the records before it are already in ``out``
                out.append(BadRecord(FIELD_TOO_LARGE if "field limit" in str(exc) else f"unreadable CSV ({exc})"))
        return out
