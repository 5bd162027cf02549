"""The import's chunk writer: writes one chunk behind in a helper thread, errors raised where the import waits, and
the short switch interval only while a writer is open."""

import sys

import pytest

from audiences import writer
from audiences.writer import ChunkWriter


def test_writes_run_in_order_one_behind_and_errors_surface_at_the_next_wait(db):
    done = []
    with ChunkWriter("test-write") as chunks:
        chunks.submit(lambda: done.append(1))
        chunks.submit(lambda: done.append(2))
        chunks.wait()
        assert done == [1, 2]

        def fail():
            raise ValueError("refused")

        chunks.submit(fail)
        with pytest.raises(ValueError, match="refused"):
            chunks.wait()


def test_the_switch_interval_is_short_while_a_writer_is_open_and_restored_after(db):
    before = sys.getswitchinterval()
    with ChunkWriter("outer"):
        assert sys.getswitchinterval() == pytest.approx(writer.SWITCH_INTERVAL)
        with ChunkWriter("inner"):
            assert sys.getswitchinterval() == pytest.approx(writer.SWITCH_INTERVAL)
        assert sys.getswitchinterval() == pytest.approx(writer.SWITCH_INTERVAL)  # the outer one is still open
    assert sys.getswitchinterval() == before


def test_the_interval_is_restored_when_the_writes_fail(db):
    before = sys.getswitchinterval()
    with pytest.raises(ZeroDivisionError), ChunkWriter("failing") as chunks:
        chunks.submit(lambda: 1 / 0)
        chunks.wait()
    assert sys.getswitchinterval() == before
