"""Shared helpers for the benchmarks: percentiles, repetitions, and one printed table per run.

Every figure is reported next to a baseline measured in the same run, as a ratio, because the
machine is shared and its speed drifts between minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import json_lines

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / ".lambdad" / "bench"


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    f = int(k)
    c = min(f + 1, len(s) - 1)
    return s[f] + (s[c] - s[f]) * (k - f)


@dataclass
class Figure:
    name: str
    unit: str
    subject: list[float] = field(default_factory=list)  #: one p50 (or value) per repetition
    subject_p99: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    baseline_p99: list[float] = field(default_factory=list)
    goal: str = ""

    def add(self, subject: list[float], baseline: list[float]) -> None:
        self.subject.append(percentile(subject, 50))
        self.subject_p99.append(percentile(subject, 99))
        self.baseline.append(percentile(baseline, 50))
        self.baseline_p99.append(percentile(baseline, 99))

    def summary(self) -> dict:
        s50, b50 = statistics.median(self.subject), statistics.median(self.baseline)
        s99, b99 = statistics.median(self.subject_p99), statistics.median(self.baseline_p99)
        return {
            "name": self.name, "unit": self.unit, "goal": self.goal, "reps": len(self.subject),
            "p50": round(s50, 3), "p99": round(s99, 3), "baseline_p50": round(b50, 3), "baseline_p99": round(b99, 3),
            "ratio_p50": round(s50 / b50, 2) if b50 else None, "ratio_p99": round(s99 / b99, 2) if b99 else None,
        }


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / 1000.0  # µs


def rss_kb(pid: int, field_name: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise LookupError(field_name)


def pss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise LookupError("Pss")


def report(figures: list[Figure], name: str) -> list[dict]:
    rows = [f.summary() for f in figures]
    print(f"\n{'figure':<44} {'p50':>10} {'p99':>10} {'base p50':>10} {'base p99':>10} {'×p50':>6} {'×p99':>6}  goal")
    for r in rows:
        print(
            f"{r['name']:<44} {r['p50']:>10} {r['p99']:>10} {r['baseline_p50']:>10} {r['baseline_p99']:>10} "
            f"{r['ratio_p50']!s:>6} {r['ratio_p99']!s:>6}  {r['goal']}  ({r['unit']}, {r['reps']} reps)"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps({"python": sys.version, "cpus": os.cpu_count(), "figures": rows}, indent=2))
    print(f"[saved {out.relative_to(ROOT)}]")
    return rows


@contextmanager
def running_daemon(prefix: str, project: Callable[[Path, int], Path]) -> Iterator[tuple[int, Path]]:
    """`lambdad up` in a fresh folder that `project(folder, api_port)` fills; yields the API port and
    what `project` returned (the handler's output file), stops the daemon and removes the folder."""
    from tests.bench.bench_http import free_port, wait_port

    base = Path(tempfile.mkdtemp(prefix=prefix))
    port = free_port()
    out = project(base, port)
    daemon = subprocess.Popen([sys.executable, "-m", "lambdad", "up"], cwd=base, stdout=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield port, out
    finally:
        daemon.send_signal(signal.SIGINT)
        daemon.wait(30)
        shutil.rmtree(base, ignore_errors=True)


def send_to_handler_ms(send: Callable[[int], None], out: Path, n: int) -> tuple[list[float], list[float]]:
    """`n` times: `send(i)`, then wait for the handler's line. Returns send -> handler start (the
    handler's first clock reading, `t`) and the send call's own duration, in ms."""
    ours, calls = [], []
    for i in range(n):
        seen = len(json_lines(out))
        t0 = time.time()
        send(i)
        calls.append((time.time() - t0) * 1000)
        while len(json_lines(out)) <= seen:
            time.sleep(0.0002)
        ours.append((json_lines(out)[-1]["t"] - t0) * 1000)
    return ours, calls
