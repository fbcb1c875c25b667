"""Function logs: one JSON-lines file per function in the state folder, like a CloudWatch log group.

Each record is `{"t": epoch seconds, "r": request id, "m": message}`. The writer batches what an
invocation prints and writes it with one system call at each flush, so warm invocations stay
cheap; `lambdad logs` reads the files back, from any process, while the daemon writes them.

When a file cannot be written (a full disk), what it should have received is kept in memory (up
to `MAX_UNWRITTEN_BYTES` per function, the oldest records dropped beyond that, and counted) and
written, in order, once a retry with backoff succeeds; the console still shows every line.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from json.encoder import encode_basestring_ascii as _quote
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import NamedTuple

from lambdad.clock import SYSTEM_CLOCK, Clock
from lambdad.health import Health
from lambdad.private import FILE_MODE, make_private_folder

#: `--log-type Tail` returns the last 4 KB of the invocation's log.
LOG_TAIL_BYTES = 4096
#: A log file is rotated to `NAME.log.1` past this size (one old generation is kept).
MAX_LOG_BYTES = 32 * 1024 * 1024
#: The writer thread waits this long after each burst, so that records arrive in batches.
WRITER_LINGER_S = 0.005
#: CloudWatch's largest log event; longer lines are split.
MAX_LINE_BYTES = 256 * 1024
#: While a log file cannot be written, at most this much of its records waits in memory.
MAX_UNWRITTEN_BYTES = 8 * 1024 * 1024

Echo = Callable[[str, str], None]


class LogRecord(NamedTuple):
    ts: float
    request_id: str
    message: str

    def to_json(self) -> str:
        # Formatted by hand: json.dumps on a dict costs more than the rest of a warm invocation's logging.
        return f'{{"t":{self.ts:.6f},"r":{_quote(self.request_id)},"m":{_quote(self.message)}}}'

    @classmethod
    def from_json(cls, line: str) -> LogRecord:
        d = json.loads(line)
        return cls(d["t"], d.get("r", ""), d["m"])


class FunctionLog:
    """One function's log file. Records are handed to the LogBook's writer thread, which appends
    them to the file and echoes them; the file stays open and its size is tracked for rotation.
    """

    def __init__(self, book: LogBook, path: Path, function: str) -> None:
        self.path = path
        self.function = function
        self._book = book
        self._fd: int | None = None
        self._size = 0
        self._unwritten = bytearray()  #: what a failed write left to write (writer thread only)
        self._dropped = 0  #: records dropped from `_unwritten` to bound it

    def write(self, records: list[LogRecord]) -> None:
        if records:
            self._book.submit(self, records)

    @property
    def behind(self) -> bool:
        """Records wait for a write that failed to be tried again."""
        return bool(self._unwritten)

    def _keep(self, records: list[LogRecord]) -> None:
        """Writer thread only: queue records behind what is already waiting."""
        self._unwritten += "".join([r.to_json() + "\n" for r in records]).encode()
        if len(self._unwritten) > MAX_UNWRITTEN_BYTES:
            cut = self._unwritten.find(b"\n", len(self._unwritten) - MAX_UNWRITTEN_BYTES) + 1
            self._dropped += self._unwritten[:cut].count(b"\n")
            del self._unwritten[:cut]

    def _append(self, records: list[LogRecord]) -> None:
        """Writer thread only: write `records` after whatever waits; raises OSError with what could
        not be written still waiting."""
        self._keep(records)
        self._write_out()

    def _write_out(self) -> None:
        if self._dropped:
            note = LogRecord(self._book.clock.time(), "", f"[lambdad] {self._dropped} record(s) of this log were "
                                                          "dropped while it could not be written")
            self._unwritten[:0] = (note.to_json() + "\n").encode()
            self._dropped = 0
        while self._unwritten:
            if self._fd is None or self._size > MAX_LOG_BYTES:
                self._reopen()
            assert self._fd is not None
            written = os.write(self._fd, self._unwritten)
            del self._unwritten[:written]
            self._size += written

    def _reopen(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        os.fchmod(self._fd, FILE_MODE)
        self._size = os.fstat(self._fd).st_size

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class LogBook:
    """The log folder of a state directory: one `FunctionLog` per function, one writer thread.

    Writing happens off the invocation path: an invocation hands over its records and returns,
    and the writer appends them (and echoes them to the console) while workers run. `flush()`
    waits until everything handed over so far is written.
    """

    def __init__(self, folder: Path, echo: Echo | None = None, health: Health | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.folder = folder
        self.echo = echo
        self.health = health or Health()
        self.clock = clock
        make_private_folder(folder)
        self._logs: dict[str, FunctionLog] = {}
        self._behind: dict[FunctionLog, None] = {}  #: logs with records waiting for a retry (writer thread)
        self._retry_at = 0.0
        self._lock = threading.Lock()
        self._queue: SimpleQueue[tuple[FunctionLog, list[LogRecord]] | threading.Event | None] = SimpleQueue()
        self._writer: threading.Thread | None = None

    def function(self, name: str) -> FunctionLog:
        with self._lock:
            flog = self._logs.get(name)
            if flog is None:
                flog = self._logs[name] = FunctionLog(self, self.folder / f"{name}.log", name)
            return flog

    def note(self, function: str, message: str, request_id: str = "", ts: float | None = None) -> None:
        """A line of lambdad's own in a function's log (a retry, a 502's reason, a batch given up):
        what AWS shows in metrics or nowhere, shown where the user already looks."""
        self.function(function).write([LogRecord(self.clock.time() if ts is None else ts, request_id,
                                                 f"[lambdad] {message}")])

    def submit(self, flog: FunctionLog, records: list[LogRecord]) -> None:
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    self._writer = threading.Thread(target=self._run, name="logbook", daemon=True)
                    self._writer.start()
        self._queue.put((flog, records))

    def flush(self, timeout_s: float = 10.0) -> None:
        if self._writer is None:
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout_s)

    def close(self) -> None:
        """Write what is pending, stop the writer, close the files."""
        writer = self._writer
        if writer is not None:
            self._queue.put(None)
            writer.join(10)
            self._writer = None
        with self._lock:
            for flog in self._logs.values():
                flog._close()

    def _run(self) -> None:
        while True:
            timeout = max(0.0, self._retry_at - self.clock.monotonic()) if self._behind else None
            try:
                batch = [self._queue.get(timeout=timeout)]
            except Empty:
                batch = []
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if self._behind and self.clock.monotonic() >= self._retry_at:
                self._catch_up()
            for item in batch:
                if item is None:
                    if self._behind:  # one last try: what still fails to be written is lost with the process
                        self._catch_up()
                    return
                if isinstance(item, threading.Event):
                    item.set()
                else:
                    self._write(*item)
            # Let the next records gather: one wake-up per burst rather than one per invocation,
            # so this thread does not fight the invocation path for the interpreter lock.
            time.sleep(WRITER_LINGER_S)

    def _catch_up(self) -> None:
        """Try again what failed; the first success after failures is the recovery."""
        for flog in list(self._behind):
            try:
                flog._write_out()
            except OSError as e:
                self._failed(e)
                return
            del self._behind[flog]
        self.health.recovered("logs")

    def _failed(self, error: OSError) -> None:
        self._retry_at = self.clock.monotonic() + self.health.failing("logs", error)

    def _write(self, flog: FunctionLog, records: list[LogRecord]) -> None:
        if flog in self._behind:  # waits for the retry, behind what is already waiting (order is kept)
            flog._keep(records)
        else:
            try:
                flog._append(records)
            except OSError as e:  # a full disk must not take the daemon down; it is said once, and retried
                self._behind[flog] = None
                self._failed(e)
        if self.echo:
            try:
                for r in records:
                    self.echo(flog.function, r.message)
            except (OSError, ValueError):  # the console is gone (terminal closed): keep writing the files
                self.echo = None


class InvocationLog:
    """What one invocation writes: platform lines and the handler's output, plus the 4 KB tail."""

    def __init__(self, flog: FunctionLog, request_id: str, clock: Clock) -> None:
        self._flog = flog
        self._request_id = request_id
        self._clock = clock
        self._pending: list[LogRecord] = []
        self._tail = bytearray()

    def line(self, message: str) -> None:
        self._pending.append(LogRecord(self._clock.time(), self._request_id, message))
        self._tail += message.encode("utf-8", "replace") + b"\n"
        if len(self._tail) > 2 * LOG_TAIL_BYTES:
            del self._tail[: len(self._tail) - LOG_TAIL_BYTES]

    def output(self, lines: list[bytes]) -> None:
        for raw in lines:
            for start in range(0, max(len(raw), 1), MAX_LINE_BYTES):
                self.line(raw[start : start + MAX_LINE_BYTES].decode("utf-8", "replace"))

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        self._flog.write(pending)

    def tail(self) -> bytes:
        return bytes(self._tail[-LOG_TAIL_BYTES:])


def log_files(folder: Path, function: str) -> list[Path]:
    """The function's log files, oldest first."""
    current = folder / f"{function}.log"
    return [p for p in (current.with_name(current.name + ".1"), current) if p.exists()]


def read_records(
    folder: Path, function: str, since_ts: float | None = None, upto: int | None = None
) -> Iterator[LogRecord]:
    """The function's records, oldest first; `upto` stops at that byte offset of the current file."""
    current = folder / f"{function}.log"
    for path in log_files(folder, function):
        with path.open("rb") as f:
            data = f.read(upto) if upto is not None and path == current else f.read()
        for line in data.decode("utf-8", "replace").splitlines():
            record = _parse(line)
            if record and (since_ts is None or record.ts >= since_ts):
                yield record


def follow_records(
    path: Path, offset: int = 0, poll_s: float = 0.2, stop: threading.Event | None = None
) -> Iterator[LogRecord]:
    """Records appended to `path` after byte `offset` (like `tail -f`), until `stop` is set."""
    stop = stop or threading.Event()
    partial = b""
    while not stop.is_set():
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size < offset:  # rotated: start over on the new file
            offset, partial = 0, b""
        if size == offset:
            stop.wait(poll_s)
            continue
        with path.open("rb") as f:
            f.seek(offset)
            chunk = f.read(size - offset)
        offset += len(chunk)
        lines = (partial + chunk).split(b"\n")
        partial = lines.pop()
        for line in lines:
            record = _parse(line.decode("utf-8", "replace"))
            if record:
                yield record


def _parse(line: str) -> LogRecord | None:
    try:
        return LogRecord.from_json(line)
    except (ValueError, KeyError, TypeError):
        return None


def format_record(record: LogRecord) -> str:
    """`2023-11-14T22:13:20.250Z message`; a traceback's CR-joined lines (AWS's format) on lines of their own."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.ts)) + f".{int(record.ts * 1000) % 1000:03d}Z"
    return f"{stamp} {record.message}".replace("\r", "\n" + " " * (len(stamp) + 1))
