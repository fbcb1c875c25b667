"""Function logs: one JSON-lines file per function in the state folder, like a CloudWatch log group.

Each record is `{"t": epoch seconds, "r": request id, "m": message}`. The writer batches what an
invocation prints and writes it with one system call at each flush, so warm invocations stay
cheap; `lambdad logs` reads the files back, from any process, while the daemon writes them.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lambdad.clock import Clock
from lambdad.runtime.invocation import LOG_TAIL_BYTES

#: A log file is rotated to `NAME.log.1` past this size (one old generation is kept).
MAX_LOG_BYTES = 32 * 1024 * 1024
#: CloudWatch's largest log event; longer lines are split.
MAX_LINE_BYTES = 256 * 1024

Echo = Callable[[str, str], None]


@dataclass(frozen=True)
class LogRecord:
    ts: float
    request_id: str
    message: str

    def to_json(self) -> str:
        return json.dumps({"t": round(self.ts, 6), "r": self.request_id, "m": self.message}, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> LogRecord:
        d = json.loads(line)
        return cls(d["t"], d.get("r", ""), d["m"])


class FunctionLog:
    """Appends one function's records to its file (thread-safe) and echoes them to the console."""

    def __init__(self, path: Path, function: str, echo: Echo | None = None) -> None:
        self.path = path
        self.function = function
        self._echo = echo
        self._lock = threading.Lock()

    def write(self, records: list[LogRecord]) -> None:
        if not records:
            return
        data = "".join(r.to_json() + "\n" for r in records).encode()
        with self._lock:
            self._rotate_if_full()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        if self._echo:
            for r in records:
                self._echo(self.function, r.message)

    def _rotate_if_full(self) -> None:
        try:
            if self.path.stat().st_size > MAX_LOG_BYTES:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        except FileNotFoundError:
            pass


class LogBook:
    """The log folder of a state directory: one `FunctionLog` per function."""

    def __init__(self, folder: Path, echo: Echo | None = None) -> None:
        self.folder = folder
        self.echo = echo
        folder.mkdir(parents=True, exist_ok=True)
        self._logs: dict[str, FunctionLog] = {}
        self._lock = threading.Lock()

    def function(self, name: str) -> FunctionLog:
        with self._lock:
            flog = self._logs.get(name)
            if flog is None:
                flog = self._logs[name] = FunctionLog(self.folder / f"{name}.log", name, self.echo)
            return flog


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


def read_records(folder: Path, function: str, since_ts: float | None = None) -> Iterator[LogRecord]:
    for path in log_files(folder, function):
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                record = _parse(line)
                if record and (since_ts is None or record.ts >= since_ts):
                    yield record


def follow_records(path: Path, poll_s: float = 0.2, stop: threading.Event | None = None) -> Iterator[LogRecord]:
    """Records appended to `path` from now on (like `tail -f`), until `stop` is set."""
    stop = stop or threading.Event()
    offset = path.stat().st_size if path.exists() else 0
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
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.ts)) + f".{int(record.ts * 1000) % 1000:03d}Z"
    return f"{stamp} {record.message}"
