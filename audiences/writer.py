"""The import's database writes, one chunk behind its parsing: each chunk's writes (stage the people, keep the
rejected rows, checkpoint) run in a helper thread while the import thread reads and prepares the next chunk.

Why: an import spends about a third of its time waiting on the database (the COPY, the merge into the staging
table, the commit), and PostgreSQL does that work in its own process, on another core. Done one chunk behind,
that wait overlaps the parsing instead of adding to it (bench/import.py, docs/performance.md).

The helper uses the import thread's own database connection, not one of its own: the staging table is a
temporary table, which only that connection sees. The two threads never use it at the same time: the import
thread hands the connection over with each chunk and takes it back (``wait``) before it touches the database
itself. At most one chunk is being written while the next is prepared, so memory stays bounded.

While a writer is open the interpreter's switch interval is 1 ms instead of 5 ms. Each of a chunk's round trips to
the database ends with the helper thread waiting for the GIL, which the parsing thread only gives up every switch
interval: at 5 ms a chunk's dozen round trips cost it 50 ms or more, and the import thread ended up waiting for
the writes (measured on a million rows: 27.6 s -> 22.2 s for the import; docs/performance.md).

An error in a chunk's writes (an exception, or SystemExit / KeyboardInterrupt when the worker is stopped) is
raised in the import thread at its next ``submit`` or ``wait``, as if the writes had run there.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import DEFAULT_DB_ALIAS, connections

SWITCH_INTERVAL = 0.001  # seconds, while any writer is open (see the module docstring)
_open = {"writers": 0, "interval": None}
_open_lock = threading.Lock()


def _interval_while_open(opening: bool) -> None:
    """The first writer to open sets the short switch interval, the last to close puts the old one back."""
    with _open_lock:
        if opening:
            if _open["writers"] == 0:
                _open["interval"] = sys.getswitchinterval()
                sys.setswitchinterval(min(SWITCH_INTERVAL, _open["interval"]))
            _open["writers"] += 1
        else:
            _open["writers"] -= 1
            if _open["writers"] == 0:
                sys.setswitchinterval(_open["interval"])


class ChunkWriter:
    """Runs one chunk's writes at a time in a helper thread, on the caller's database connection."""

    def __init__(self, name: str, using: str = DEFAULT_DB_ALIAS):
        self.using = using
        self.connection = connections[using]
        self.name = name
        self.pool: ThreadPoolExecutor | None = None
        self.pending: Future | None = None
        self.context = None  # what the caller said the pending chunk is (rows), for its error report

    def __enter__(self) -> ChunkWriter:
        self.connection.inc_thread_sharing()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        _interval_while_open(True)
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.pending is not None and not self.pending.done():
                self.pending.exception()  # let it end: the connection is the caller's again after this
        finally:
            self.pending = None
            self.pool.shutdown(wait=True)
            self.connection.dec_thread_sharing()
            _interval_while_open(False)

    def submit(self, writes: Callable[[], None], context=None) -> None:
        """Wait for the previous chunk's writes (raising their error), then start these."""
        self.wait()
        self.context = context
        self.pending = self.pool.submit(self._on_shared_connection, writes)

    def wait(self) -> None:
        """Wait for the pending writes; raises their error. The connection is the caller's afterwards."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def _on_shared_connection(self, writes: Callable[[], None]) -> None:
        connections[self.using] = self.connection
        try:
            writes()
        finally:
            del connections[self.using]  # not closed: it is the import thread's
