"""Schedules: firing lateness through a real daemon vs a bare APScheduler job, the cost of 1,000 rules.

- lateness: scheduled time -> handler start (wall clock; the handler's first line reads it). 60
  rules `rate(1 minute)` whose creation times are staggered by one second fire once a second;
  one pass idle, one while a writer drops files into a bucket the daemon watches.
  Baseline: a bare BackgroundScheduler job every second, lateness as APScheduler reports it.
- 1,000 rules: `lambdad up` to "ready" and the daemon's idle CPU over 10 s, vs no rules.
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

from lambdad.store import Store, rules
from tests.bench.common import Figure, report

HANDLER = """
import os, time
OUT = os.environ["BENCH_OUT"]

def handler(event, context):
    t = time.time()
    with open(OUT, "a") as f:
        f.write(f"{t} {event['time_s']}\\n")
"""


def project(folder: Path, n_rules: int, with_bucket: bool) -> Path:
    (folder / "functions").mkdir(parents=True)
    (folder / "functions" / "tick.py").write_text(HANDLER)
    lines = ["version: 1", "concurrency: 16"]
    if with_bucket:
        lines += ["buckets:", "  drop: {path: ./bucket}"]
    lines += ["functions:", "  tick:", "    handler: tick.handler", "    code: ./functions",
              f"    environment: {{BENCH_OUT: '{folder / 'fired.txt'}'}}", "    events:"]
    lines += [f"      - schedule: {{name: r{i}, expression: 'rate(1 minute)', input: {{rule: {i}}}}}"
              for i in range(n_rules)]
    (folder / "lambdad.yaml").write_text("\n".join(lines) + "\n")
    return folder


def start(folder: Path) -> tuple[subprocess.Popen, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lambdad", "up"], cwd=folder, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ready in "):
            break
    ready_ms = (time.perf_counter() - t0) * 1000
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, ready_ms


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(30)


def lateness_ours(folder: Path, seconds: int, busy: bool) -> list[float]:
    """Rules whose first runs fall one per second from ~5 s from now; input carries the schedule."""
    n = seconds
    project(folder, n, with_bucket=busy)
    # rate(1 minute) created at T-55+i fires at T+5+i: stagger the creation times through the store
    base = time.time() - 55
    store = Store.in_state_folder(folder / ".lambdad")
    for i in range(n):
        store.write(lambda tx, i=i: rules.ensure(tx, f"r{i}", "tick", "rate(1 minute)", "UTC", base + i))
    store.close()
    # the handler needs the scheduled time: put it in each rule's input
    text = (folder / "lambdad.yaml").read_text()
    for i in range(n):
        text = text.replace(f"input: {{rule: {i}}}", f"input: {{time_s: {base + i + 60}}}", 1)
    (folder / "lambdad.yaml").write_text(text)
    proc, _ = start(folder)
    stop_writer = threading.Event()
    if busy:
        def write_files() -> None:
            bucket, k = folder / "bucket", 0
            while not stop_writer.is_set():
                (bucket / f"f{k}.txt").write_text("x")
                k += 1
                time.sleep(0.002)

        threading.Thread(target=write_files, daemon=True).start()
    try:
        deadline = time.time() + 60 + n + 10
        out = folder / "fired.txt"
        while time.time() < deadline:
            if out.exists() and len(out.read_text().splitlines()) >= n:
                break
            time.sleep(0.2)
        pairs = [line.split() for line in out.read_text().splitlines()] if out.exists() else []
        return [(float(t) - float(s)) * 1000 for t, s in pairs]
    finally:
        stop_writer.set()
        stop(proc)


def lateness_bare(seconds: int) -> list[float]:
    from apscheduler.events import EVENT_JOB_EXECUTED
    from apscheduler.schedulers.background import BackgroundScheduler

    samples: list[float] = []
    entered: list[float] = []
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(lambda: entered.append(time.time()), "interval", seconds=1, id="bare")
    scheduler.add_listener(lambda e: samples.append((entered[-1] - e.scheduled_run_time.timestamp()) * 1000),
                           EVENT_JOB_EXECUTED)
    scheduler.start()
    time.sleep(seconds + 1.5)
    scheduler.shutdown()
    return samples


def thousand_rules(folder: Path, n: int) -> tuple[float, float]:
    project(folder, n, with_bucket=False)
    proc, ready_ms = start(folder)
    try:
        ps = psutil.Process(proc.pid)
        time.sleep(2)
        before = sum(ps.cpu_times()[:2])
        time.sleep(10)
        idle_pct = (sum(ps.cpu_times()[:2]) - before) / 10 * 100
        return ready_ms, idle_pct
    finally:
        stop(proc)


def main(reps: int = 1, seconds: int = 60) -> list[dict]:
    idle = Figure("schedule lateness, idle daemon", "ms", goal="p50 ≤ 1.5× bare + a worker round trip")
    busy = Figure("schedule lateness, daemon busy with files", "ms", goal="p99 ≤ 25 ms")
    start_up = Figure("1,000 rules: up to ready (vs 1 rule)", "ms", goal="(information)")
    cpu = Figure("1,000 rules: idle CPU % (vs 1 rule)", "%", goal="(information)")
    for _ in range(reps):
        base = Path(tempfile.mkdtemp(prefix="lambdad-bench-schedules-"))
        try:
            bare = lateness_bare(seconds)
            idle.add(lateness_ours(base / "idle", seconds, busy=False), bare)
            busy.add(lateness_ours(base / "busy", seconds, busy=True), bare)
            many_ms, many_cpu = thousand_rules(base / "many", 1000)
            one_ms, one_cpu = thousand_rules(base / "one", 1)
            start_up.add([many_ms], [one_ms])
            cpu.add([many_cpu], [one_cpu])
        finally:
            shutil.rmtree(base, ignore_errors=True)
    return report([idle, busy, start_up, cpu], "schedules")


if __name__ == "__main__":
    main(int(os.environ.get("BENCH_REPS", "1")), int(os.environ.get("BENCH_SECONDS", "60")))
