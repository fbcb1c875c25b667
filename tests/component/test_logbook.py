"""The LogBook writer thread, rotation, reading back, and following a growing log."""

from __future__ import annotations

import threading

import pytest

from lambdad import logs
from lambdad.logs import InvocationLog, LogBook, LogRecord, follow_records, format_record, read_records
from tests.helpers import FakeClock


def test_records_are_written_in_order_and_echoed(tmp_path):
    echoed = []
    book = LogBook(tmp_path, echo=lambda fn, msg: echoed.append((fn, msg)))
    clock = FakeClock()
    ilog = InvocationLog(book.function("f"), "rid-1", clock)
    ilog.line("START")
    ilog.output([b"printed", b"caf\xc3\xa9 \xff"])
    clock.advance(1.5)
    ilog.line('quote " and tab\t')
    ilog.flush()
    book.flush()
    records = list(read_records(tmp_path, "f"))
    assert [r.message for r in records] == ["START", "printed", "café \ufffd", 'quote " and tab\t']
    assert {r.request_id for r in records} == {"rid-1"}
    assert records[-1].ts == pytest.approx(clock.time())
    assert echoed == [("f", r.message) for r in records]
    book.close()


def test_log_tail_keeps_the_last_4_kb(tmp_path):
    book = LogBook(tmp_path)
    ilog = InvocationLog(book.function("f"), "r", FakeClock())
    for i in range(1000):
        ilog.line(f"line {i:04d}")
    tail = ilog.tail()
    assert len(tail) == 4096 and tail.endswith(b"line 0999\n")
    book.close()


def test_long_lines_are_split_like_cloudwatch_events(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "MAX_LINE_BYTES", 10)
    book = LogBook(tmp_path)
    ilog = InvocationLog(book.function("f"), "r", FakeClock())
    ilog.output([b"a" * 25, b""])
    ilog.flush()
    book.close()
    assert [r.message for r in read_records(tmp_path, "f")] == ["a" * 10, "a" * 10, "a" * 5, ""]


def test_rotation_keeps_one_old_generation(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "MAX_LOG_BYTES", 200)
    book = LogBook(tmp_path)
    flog = book.function("f")
    for i in range(20):
        flog.write([LogRecord(float(i), "r", f"message {i}")])
    book.close()
    assert (tmp_path / "f.log.1").exists()
    messages = [r.message for r in read_records(tmp_path, "f")]
    assert messages == [f"message {i}" for i in range(20 - len(messages), 20)]  # newest kept, in order
    assert len(messages) < 20


def test_since_filters_by_time(tmp_path):
    book = LogBook(tmp_path)
    book.function("f").write([LogRecord(100.0, "r", "old"), LogRecord(200.0, "r", "new")])
    book.close()
    assert [r.message for r in read_records(tmp_path, "f", since_ts=150.0)] == ["new"]


def test_follow_yields_what_is_appended(tmp_path):
    book = LogBook(tmp_path)
    flog = book.function("f")
    flog.write([LogRecord(1.0, "r", "before")])
    book.flush()
    start = (tmp_path / "f.log").stat().st_size
    stop = threading.Event()
    seen: list[str] = []

    def follow():
        for record in follow_records(tmp_path / "f.log", offset=start, poll_s=0.01, stop=stop):
            seen.append(record.message)
            if len(seen) == 2:
                stop.set()

    t = threading.Thread(target=follow)
    t.start()
    flog.write([LogRecord(2.0, "r", "after 1"), LogRecord(3.0, "r", "after 2")])
    book.flush()
    t.join(10)
    assert seen == ["after 1", "after 2"]
    book.close()


def test_format_record():
    assert format_record(LogRecord(1_700_000_000.25, "r", "hello")) == "2023-11-14T22:13:20.250Z hello"


def test_format_record_unfolds_tracebacks():
    record = LogRecord(1_700_000_000.25, "r", "[ERROR] ValueError: x\rTraceback (most recent call last):")
    assert format_record(record) == (
        "2023-11-14T22:13:20.250Z [ERROR] ValueError: x\n                         Traceback (most recent call last):"
    )


def test_notes_are_stamped_by_the_books_clock(tmp_path):
    clock = FakeClock(start=1_600_000_000.0)
    book = LogBook(tmp_path, clock=clock)
    book.note("f", "retrying in 60s", request_id="r")
    book.flush()
    assert list(read_records(tmp_path, "f")) == [LogRecord(1_600_000_000.0, "r", "[lambdad] retrying in 60s")]
    book.close()
