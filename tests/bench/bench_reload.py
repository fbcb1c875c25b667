"""Hot reload through a real daemon, against a bare watchdog observer noticing the same saves.

- manifest save -> new configuration live: the manifest is saved the way editors do (temporary
  file renamed over it), adding a function and a bucket; the clock stops when the daemon prints
  its `reload (saved): ...` line, which it prints once the new configuration is applied.
- handler save -> first invocation on the new code: the handler file is saved, then a file is
  dropped into a watched bucket every 2 ms until the handler that runs is the new version; the
  clock stops when that handler starts (it reads the wall clock first thing).
Baseline for both: a bare watchdog Observer on the same folder, save -> its event callback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.bench.common import Figure, report

HANDLER = """import os, time
VERSION = {version}


def handler(event, context):
    t = time.time()
    with open(os.environ["BENCH_OUT"], "a") as f:
        f.write(f"{{VERSION}} {{t}}\\n")
"""

MANIFEST = """version: 1
buckets:
  drop: {{path: ./bucket}}
functions:
  app:
    handler: app.handler
    code: ./functions
    environment: {{BENCH_OUT: '{out}'}}
    events:
      - s3: {{bucket: drop, events: ["s3:ObjectCreated:*"]}}
"""


def save(path: Path, text: str) -> float:
    """Save as an editor does; returns the wall-clock time of the rename."""
    tmp = path.with_name(f".{path.name}.swp")
    tmp.write_text(text)
    t = time.time()
    os.replace(tmp, path)
    return t


class Daemon:
    def __init__(self, folder: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "lambdad", "up"], cwd=folder, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[tuple[float, str]] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(30):
            raise RuntimeError(f"the daemon did not start: {self.lines}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.time(), line))
            if line.startswith("ready in "):
                self.ready.set()

    def wait_line(self, prefix: str, after: int, timeout: float = 10.0) -> float:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for t, line in self.lines[after:]:
                if line.startswith(prefix):
                    return t
            time.sleep(0.001)
        raise RuntimeError(f"no {prefix!r} line: {self.lines[after:]}")

    def stop(self) -> None:
        self.proc.send_signal(2)
        self.proc.wait(30)


def bare_observer(folder: Path, n: int) -> list[float]:
    """Save -> a bare watchdog Observer's callback, for the same kind of save."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    seen = threading.Event()
    at: list[float] = []

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event) -> None:  # type: ignore[no-untyped-def]
            if str(event.dest_path or event.src_path).endswith("watched.yaml") and not seen.is_set():
                at.append(time.time())
                seen.set()

    target = folder / "watched.yaml"
    target.write_text("x")
    observer = Observer()
    observer.schedule(Handler(), str(folder), recursive=False)
    observer.start()
    samples = []
    try:
        for i in range(n):
            seen.clear()
            t = save(target, f"version {i}\n")
            if seen.wait(5):
                samples.append((at[-1] - t) * 1000)
            time.sleep(0.05)
    finally:
        observer.stop()
        observer.join()
    return samples


def setup(folder: Path) -> tuple[Path, str]:
    """The project both figures use; returns where handlers record and the manifest's text."""
    out = folder / "out.txt"
    (folder / "functions").mkdir(parents=True)
    (folder / "functions" / "app.py").write_text(HANDLER.format(version=0))
    text = MANIFEST.format(out=out)
    (folder / "lambdad.yaml").write_text(text)
    return out, text


def manifest_saves(folder: Path, n: int) -> list[float]:
    _, base = setup(folder)
    daemon = Daemon(folder)
    samples = []
    try:
        for i in range(n):
            extra = f"  extra{i}:\n    handler: app.handler\n    code: ./functions\n"
            bucket = f"  more{i:03d}: {{path: ./more/b{i}}}\n"
            text = base.replace("functions:\n", f"{bucket}functions:\n") + extra
            mark = len(daemon.lines)
            t = save(folder / "lambdad.yaml", text)
            samples.append((daemon.wait_line("reload (saved): ", mark) - t) * 1000)
    finally:
        daemon.stop()
    return samples


def handler_saves(folder: Path, n: int) -> list[float]:
    out, _ = setup(folder)
    daemon = Daemon(folder)
    samples = []
    bucket = folder / "bucket"
    try:
        for i in range(1, n + 1):
            t = save(folder / "functions" / "app.py", HANDLER.format(version=i))
            k, deadline = 0, time.time() + 10
            while time.time() < deadline:  # one event at a time, so the warm worker serves each
                lines = len(out.read_text().splitlines()) if out.exists() else 0
                (bucket / f"v{i}-{k}.txt").write_text("x")
                k += 1
                while time.time() < deadline and (len(out.read_text().splitlines()) if out.exists() else 0) == lines:
                    time.sleep(0.0005)
                version, started = out.read_text().splitlines()[-1].split()
                if int(version) == i:
                    samples.append((float(started) - t) * 1000)
                    break
    finally:
        daemon.stop()
    return samples


def main(reps: int = 1, n: int = 20) -> list[dict]:
    manifest = Figure("manifest save -> new configuration live", "ms", goal="p50 ≤ 300 ms")
    code = Figure("handler save -> first invocation on new code", "ms", goal="(information)")
    for _ in range(reps):
        base = Path(tempfile.mkdtemp(prefix="lambdad-bench-reload-"))
        try:
            (base / "bare").mkdir()
            bare = bare_observer(base / "bare", n)
            manifest.add(manifest_saves(base / "manifest", n), bare)
            code.add(handler_saves(base / "code", n), bare)
        finally:
            shutil.rmtree(base, ignore_errors=True)
    return report([manifest, code], "reload")


if __name__ == "__main__":
    main(int(os.environ.get("BENCH_REPS", "1")))
