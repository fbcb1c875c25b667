"""`lambdad up` to "ready" vs a bare interpreter importing lambdad's dependencies, in the same run.

Both are wall times from process start, so interpreter start-up is in both. The baseline imports
what the daemon core needs (json, sqlite3, threading, watchdog, apscheduler, jsonschema, yaml).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.common import Figure, report

DEPS = (
    "import json, sqlite3, threading, yaml, jsonschema, watchdog.observers, watchdog.events, "
    "apscheduler.schedulers.background, apscheduler.triggers.cron, apscheduler.triggers.interval"
)
MANIFEST = """
version: 1
functions:
  noop: {handler: noop.handler, code: ./functions}
"""


def time_to_ready(folder: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lambdad", "up"], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ready in "):
            break
    elapsed = (time.perf_counter() - t0) * 1000
    proc.send_signal(signal.SIGINT)
    proc.wait(10)
    proc.stdout.close()
    return elapsed


def time_command(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - t0) * 1000


def main(reps: int = 5, runs: int = 10) -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix="lambdad-bench-up-"))
    (folder / "functions").mkdir()
    (folder / "functions" / "noop.py").write_text("def handler(e, c):\n    return e\n")
    (folder / "lambdad.yaml").write_text(MANIFEST)
    ready = Figure("lambdad up to ready", "ms", goal="≤ 1.5× deps import")
    bare = Figure("python -c pass (interpreter start)", "ms", goal="(information)")
    for _ in range(reps):
        ours, deps, empty = [], [], []
        for _ in range(runs):
            ours.append(time_to_ready(folder))
            deps.append(time_command(DEPS))
            empty.append(time_command("pass"))
        ready.add(ours, deps)
        bare.add(empty, deps)
    return report([ready, bare], "startup")


if __name__ == "__main__":
    main(int(os.environ.get("BENCH_REPS", "5")))
