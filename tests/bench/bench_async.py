"""The async path's bookkeeping vs a bare SQLite WAL queue loop, in the same run.

- baseline: one thread, one connection: INSERT (commit), claim UPDATE ... RETURNING (commit),
  DELETE (commit) per event — the cycle the reference measured at about 18,700 events/s.
- subject: `Dispatcher.submit` then `Dispatcher.step` until every event settles, with an
  in-memory environment standing in for the worker (so only the queue's work is measured):
  all successes, and all failures ending in a dead-letter queue (retries 0).
- end to end (information): the same with real no-op worker processes and the thread pool.

Throughput figures are events/s; the table's "p50" column carries the median over repetitions.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from lambdad.clock import SYSTEM_CLOCK
from lambdad.dispatcher import Dispatcher
from lambdad.logs import LogBook
from lambdad.manifest import load_manifest
from lambdad.runtime.functions import Functions
from lambdad.runtime.invocation import Outcome
from lambdad.store import Durability, Store, invocations
from tests.bench.common import Figure, report
from tests.component.twins import FakeSpawner, InlineExecutor

PAYLOAD = b'{"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "uploads"}, "object": {"key": "a.jpg"}}}]}'
MANIFEST = """
version: 1
durability: {durability}
queues:
  dlq: {{}}
functions:
  ok: {{handler: noop.handler, code: ./functions, keep_alive: 1h}}
  bad:
    handler: noop.handler
    code: ./functions
    async: {{maximum_retry_attempts: 0, dead_letter: {{queue: dlq}}}}
"""


def bare_cycle(path: Path, n: int, full: bool) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if full else 'NORMAL'}")
    conn.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, body BLOB, state INT DEFAULT 0, visible_at REAL, lease REAL)")
    conn.execute("CREATE INDEX q_due ON q (state, visible_at, id)")
    t0 = time.perf_counter()
    for _ in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO q (body, visible_at) VALUES (?, ?)", (PAYLOAD, time.time()))
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        (row_id,) = conn.execute(
            "UPDATE q SET state = 1, lease = ? WHERE id = (SELECT id FROM q WHERE state = 0 ORDER BY visible_at, id "
            "LIMIT 1) RETURNING id", (time.time() + 30,)
        ).fetchone()
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM q WHERE id = ?", (row_id,))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return n / elapsed


def project(folder: Path, durability: str) -> Path:
    (folder / "functions").mkdir(parents=True, exist_ok=True)
    (folder / "functions" / "noop.py").write_text("def handler(e, c):\n    return e\n")
    path = folder / "lambdad.yaml"
    path.write_text(MANIFEST.format(durability=durability))
    return path


def dispatcher_rate(folder: Path, n: int, function: str, durability: str, real_workers: bool) -> float:
    manifest = load_manifest(project(folder, durability), env={})
    store = Store.in_state_folder(folder / "state", Durability(durability))
    spawner = None if real_workers else FakeSpawner(
        lambda req: (Outcome.success, req.payload) if function == "ok" else (Outcome.error, b'{"errorType": "E"}'),
        logs=False,
    )
    functions = Functions(manifest, LogBook(folder / "logs"), SYSTEM_CLOCK, {}, spawn_override=spawner)
    dispatcher = Dispatcher(store, functions, SYSTEM_CLOCK, lambda m: None, None if real_workers else InlineExecutor())
    if real_workers:
        functions.invoke(function, b"{}")  # the first cold start is not the queue's cost
    t0 = time.perf_counter()
    for _ in range(n):
        dispatcher.invocations.enqueue(function, PAYLOAD)
    while True:
        with store.reading() as tx:
            left = sum(c.queued + c.retrying + c.in_flight for c in invocations.counts(tx).values())
        if not left:
            break
        dispatcher.step(time.time())
        if real_workers:
            time.sleep(0.0005)
    elapsed = time.perf_counter() - t0
    dispatcher.close()
    functions.close()
    store.close()
    return n / elapsed


def main(reps: int = 5, n: int = 3000) -> list[dict]:
    figures = []
    for durability, events_n in (("normal", n), ("full", n // 5)):
        full = durability == "full"
        ok = Figure(f"async success path, {durability}", "ev/s", goal="≥ 0.5× bare cycle")
        bad = Figure(f"async failure → DLQ path, {durability}", "ev/s", goal="≥ 0.5× bare cycle")
        e2e = Figure(f"end to end, real no-op workers, {durability}", "ev/s", goal="(information)")
        for _ in range(reps):
            base_dir = Path(tempfile.mkdtemp(prefix="lambdad-bench-async-"))
            try:
                base = bare_cycle(base_dir / "bare.db", events_n, full)
                ok.add([dispatcher_rate(base_dir / "ok", events_n, "ok", durability, False)], [base])
                bad.add([dispatcher_rate(base_dir / "bad", events_n, "bad", durability, False)], [base])
                e2e.add([dispatcher_rate(base_dir / "e2e", events_n // 3, "ok", durability, True)], [base])
            finally:
                shutil.rmtree(base_dir)
        figures += [ok, bad, e2e]
    return report(figures, "async")


if __name__ == "__main__":
    main(int(os.environ.get("BENCH_REPS", "5")))
