"""Folders as buckets, measured through a real daemon against a bare watchdog observer in the same run.

- latency: a file's close -> the handler starting (its first line reads CLOCK_MONOTONIC, which all
  processes share), one file at a time; baseline: close -> `on_closed` of a bare watchdog Observer.
- burst: 10,000 files written at once: every file handled exactly once; files/s from the first
  write to the last handler, vs the bare observer's delivery rate with the same (close-write) filter.
- renames: 40,000 files renamed into the bucket at once: all handled; the daemon's CPU per renamed
  file vs per written file (watchdog's Observer pairs moves with a linear scan; lambdad by cookie).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from watchdog.events import FileClosedEvent, FileSystemEventHandler
from watchdog.observers import Observer

from tests.bench.common import Figure, report

HANDLER = """
import os, time
OUT = os.environ["BENCH_OUT"]

def handler(event, context):
    t = time.monotonic_ns()
    key = event["Records"][0]["s3"]["object"]["key"]
    with open(OUT, "a") as f:
        f.write(f"{t} {key}\\n")
"""
MANIFEST = """
version: 1
concurrency: 8
buckets:
  drop: {path: ./bucket}
functions:
  record:
    handler: record.handler
    code: ./functions
    environment: {BENCH_OUT: "{out}"}
    events:
      - s3: {bucket: drop, events: ["s3:ObjectCreated:*"]}
"""


class Daemon:
    def __init__(self, folder: Path) -> None:
        (folder / "functions").mkdir(parents=True)
        (folder / "functions" / "record.py").write_text(HANDLER)
        self.out = folder / "handled.txt"
        (folder / "lambdad.yaml").write_text(MANIFEST.replace("{out}", str(self.out)))
        (folder / "bucket").mkdir()
        self.bucket = folder / "bucket"
        self.proc = subprocess.Popen([sys.executable, "-m", "lambdad", "up"], cwd=folder, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("ready in "):
                break
        threading.Thread(target=self._drain, daemon=True).start()
        self.ps = psutil.Process(self.proc.pid)

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    def handled(self) -> list[tuple[int, str]]:
        if not self.out.exists():
            return []
        text = self.out.read_text()
        return [(int(t), k) for t, k in (line.split(" ", 1) for line in text[: text.rfind("\n") + 1].splitlines())]

    def wait_for(self, count: int, timeout: float = 120.0) -> list[tuple[int, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.handled()
            if len(got) >= count:
                return got
            time.sleep(0.002)
        raise TimeoutError(f"only {len(self.handled())} of {count} handled")

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system  # the daemon process only: not the workers (children)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)


def write_file(path: Path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"x" * 100)
    t0 = time.monotonic_ns()
    os.close(fd)
    return t0


def latency_ours(folder: Path, n: int) -> list[float]:
    daemon = Daemon(folder)
    try:
        samples = []
        for i in range(20 + n):  # the first ones warm the environment
            t0 = write_file(daemon.bucket / f"l{i}.txt")
            t1 = daemon.wait_for(i + 1)[-1][0]
            if i >= 20:
                samples.append((t1 - t0) / 1000)
        return samples
    finally:
        daemon.stop()


class Callback(FileSystemEventHandler):
    def __init__(self) -> None:
        self.times: list[int] = []
        self.got = threading.Event()

    def on_closed(self, event) -> None:
        self.times.append(time.monotonic_ns())
        self.got.set()


def latency_bare(folder: Path, n: int) -> list[float]:
    folder.mkdir()
    handler = Callback()
    observer = Observer()
    observer.schedule(handler, str(folder), recursive=True)
    observer.start()
    try:
        samples = []
        for i in range(20 + n):
            handler.got.clear()
            t0 = write_file(folder / f"l{i}.txt")
            handler.got.wait(5)
            if i >= 20:
                samples.append((handler.times[-1] - t0) / 1000)
        return samples
    finally:
        observer.stop()
        observer.join()


def announce_rate(folder: Path, n: int, mode: str) -> tuple[float, float]:
    """The watcher alone, in this process: files -> S3 events committed to the store.

    Returns files/s (first write to last commit) and this process's CPU per file (the watcher's).
    """
    from lambdad.clock import SYSTEM_CLOCK
    from lambdad.manifest.model import Bucket, Function, Manifest, S3Trigger
    from lambdad.store import Store
    from lambdad.triggers.buckets.sync import BucketSync
    from lambdad.triggers.buckets.watch import BucketWatcher

    bucket = folder / "bucket"
    bucket.mkdir(parents=True)
    trigger = S3Trigger("b", ("s3:ObjectCreated:*",))
    manifest = Manifest(folder / "lambdad.yaml", functions={"f": Function("f", "a.h", folder, "python3",
                        events=(trigger,))}, buckets={"b": Bucket("b", bucket)})
    store = Store.in_state_folder(folder / "state")
    watcher = BucketWatcher([BucketSync(manifest.buckets["b"], manifest, store, SYSTEM_CLOCK)], store)
    watcher.start()
    try:
        watcher.wait_idle(10)
        if mode == "rename":
            subprocess.run([sys.executable, "-c", WRITER, str(folder / "staging"), str(n), "write"], check=True)
        cpu0, t0 = time.process_time(), time.monotonic()
        args = [str(folder / "staging"), str(n), "rename", str(bucket)] if mode == "rename" else [str(bucket), str(n),
                                                                                                "write"]
        subprocess.run([sys.executable, "-c", WRITER, *args], check=True)
        while True:
            with store.reading() as tx:
                count = tx.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            if count >= n:
                break
            time.sleep(0.001)
        elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
        with store.reading() as tx:
            distinct = tx.execute("SELECT COUNT(DISTINCT payload) FROM events").fetchone()[0]
        assert count == n == distinct, f"{count} announced for {n} files"
        return n / elapsed, cpu / n * 1e6
    finally:
        watcher.stop()
        store.close()


def burst_ours(folder: Path, n: int) -> tuple[float, float]:
    daemon = Daemon(folder)
    try:
        cpu0 = daemon.cpu_s()
        t0 = time.monotonic_ns()
        subprocess.run([sys.executable, "-c", WRITER, str(daemon.bucket), str(n), "write"], check=True)
        got = daemon.wait_for(n, timeout=300)
        keys = [k for _, k in got]
        assert len(keys) == n and len(set(keys)) == n, f"{len(keys)} handled, {len(set(keys))} distinct"
        rate = n / ((max(t for t, _ in got) - t0) / 1e9)
        return rate, (daemon.cpu_s() - cpu0) / n * 1e6
    finally:
        daemon.stop()


def burst_bare(folder: Path, n: int) -> float:
    folder.mkdir()
    seen: set[str] = set()
    done = threading.Event()

    class Handler(FileSystemEventHandler):
        def on_closed(self, event) -> None:
            seen.add(event.src_path)
            if len(seen) >= n:
                done.set()

    observer = Observer()
    observer.schedule(Handler(), str(folder), recursive=True, event_filter=[FileClosedEvent])
    observer.start()
    try:
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", WRITER, str(folder), str(n), "write"], check=True)
        done.wait(120)
        return len(seen) / (time.monotonic() - t0)
    finally:
        observer.stop()
        observer.join()


WRITER = """
import os, sys
folder, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(folder, exist_ok=True)
for i in range(n):
    name = f"f{i:06d}.txt"
    if mode == "write":
        fd = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"x" * 100)
        os.close(fd)
    else:
        os.rename(os.path.join(folder, name), os.path.join(sys.argv[4], name))
"""


def main(reps: int = 3, n: int = 200) -> list[dict]:
    latency = Figure("file close -> handler start", "µs", goal="p50 ≤ 2× (bare + commits + ½ RTT), p99 ≤ 2 ms")
    burst = Figure("10,000 files written: announced", "files/s", goal="≥ 0.5× bare observer, same filter")
    renames = Figure("40,000 files renamed in: announced", "files/s", goal="all (vs written rate)")
    cpu = Figure("watcher CPU per renamed vs written file", "µs/file", goal="≤ 1.5×")
    e2e = Figure("10,000 files written: handled end to end", "files/s", goal="(information; vs announced)")
    for _ in range(reps):
        base = Path(tempfile.mkdtemp(prefix="lambdad-bench-buckets-"))
        try:
            latency.add(latency_ours(base / "lat", n), latency_bare(base / "lat-bare", n))
            rate, cpu_write = announce_rate(base / "burst", 10_000, "write")
            burst.add([rate], [burst_bare(base / "burst-bare", 10_000)])
            rename_rate, cpu_rename = announce_rate(base / "renames", 40_000, "rename")
            renames.add([rename_rate], [rate])
            cpu.add([cpu_rename], [cpu_write])
            e2e.add([burst_ours(base / "e2e", 10_000)[0]], [rate])
        finally:
            shutil.rmtree(base, ignore_errors=True)
    return report([latency, burst, renames, cpu, e2e], "buckets")


if __name__ == "__main__":
    main(int(os.environ.get("BENCH_REPS", "3")))
