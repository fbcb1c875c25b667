"""Worker runtime: warm invoke, cold start, idle memory — each against a bare baseline in the same run.

- warm: `Functions.invoke` on a no-op handler (event → worker → result, logs written) vs a bare
  length-prefixed JSON round trip over a Unix socketpair to a persistent child.
- cold: a new environment's first result (zygote already running) vs a fresh
  `python -c 'import json'` process answering its parent.
- memory: an idle warm worker's resident memory vs a bare interpreter that imported json.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lambdad.logs import LogBook
from lambdad.manifest import load_manifest
from tests.bench.common import Figure, pss_kb, report, rss_kb, timed

#: A 226-byte S3-style event, like the baseline measurements in the reference.
EVENT = {
    "Records": [
        {
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "uploads"}, "object": {"key": "images/cat.jpg", "size": 1024}},
            "requestId": "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
        }
    ]
}
HDR = struct.Struct("!I")
BARE_CHILD = r"""
import json, os, socket, struct, sys
HDR = struct.Struct('!I')
s = socket.socket(fileno=int(sys.argv[1]))
def rd(n):
    b = bytearray()
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise SystemExit(0)
        b += c
    return bytes(b)
while True:
    (n,) = HDR.unpack(rd(4))
    ev = json.loads(rd(n))
    out = json.dumps({'statusCode': 200, 'body': ev}).encode()
    s.sendall(HDR.pack(len(out)) + out)
"""
REPLY_JSON = "import json,sys; sys.stdout.write(json.dumps({'ready': True}) + '\\n'); sys.stdout.flush()"
IDLE_JSON = "import json,sys; sys.stdout.write('ready\\n'); sys.stdout.flush(); sys.stdin.read()"
MANIFEST = """
version: 1
functions:
  noop: {handler: noop.handler, code: ./functions, keep_alive: 1h}
"""
NOOP = "def handler(event, context):\n    return {'statusCode': 200, 'body': event}\n"


class BareSocketChild:
    def __init__(self) -> None:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.proc = subprocess.Popen([sys.executable, "-c", BARE_CHILD, str(b.fileno())], pass_fds=(b.fileno(),))
        b.close()
        self.sock = a

    def _read(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            buf += self.sock.recv(n - len(buf))
        return bytes(buf)

    def round_trip(self) -> dict:
        data = json.dumps(EVENT).encode()
        self.sock.sendall(HDR.pack(len(data)) + data)
        (n,) = HDR.unpack(self._read(4))
        return json.loads(self._read(n))

    def close(self) -> None:
        self.sock.close()
        self.proc.wait(5)


def bare_cold_start() -> float:
    t0 = time.perf_counter_ns()
    p = subprocess.Popen([sys.executable, "-c", REPLY_JSON], stdout=subprocess.PIPE)
    assert p.stdout is not None
    p.stdout.readline()
    elapsed = (time.perf_counter_ns() - t0) / 1e6
    p.wait()
    p.stdout.close()
    return elapsed


def make_functions(folder: Path):
    from lambdad.runtime.functions import Functions

    (folder / "functions").mkdir()
    (folder / "functions" / "noop.py").write_text(NOOP)
    (folder / "lambdad.yaml").write_text(MANIFEST)
    manifest = load_manifest(folder / "lambdad.yaml", env={})
    functions = Functions(manifest, LogBook(folder / "logs"))
    functions.start_runtimes()
    return functions


def main(reps: int = 5, warm_n: int = 5000, cold_n: int = 40) -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix="lambdad-bench-"))
    payload = json.dumps(EVENT).encode()
    functions = make_functions(folder)
    warm = Figure("warm invoke, no-op handler", "µs", goal="p50 ≤ 1.5×, p99 ≤ 2×")
    cold = Figure("cold start, handler imports json", "ms", goal="≤ 1.3×")
    memory = Figure("idle worker RSS", "MB", goal="≤ bare + 3 MB")
    memory_pss = Figure("idle worker PSS (shared pages split)", "MB", goal="(information)")
    zygote_boot = Figure("first cold start incl. zygote boot", "ms", goal="(information)")
    try:
        for _ in range(reps):
            bare = BareSocketChild()
            for _ in range(500):
                bare.round_trip()
                functions.invoke("noop", payload)
            ours, base = [], []
            for _ in range(warm_n):  # interleaved, so drift hits both equally
                base.append(timed(bare.round_trip))
                ours.append(timed(lambda: functions.invoke("noop", payload)))
            bare.close()
            warm.add(ours, base)

            pool = functions.pool("noop")
            ours, base = [], []
            for _ in range(cold_n):
                pool.close_idle()
                ours.append(timed(lambda: functions.invoke("noop", payload)) / 1000)
                base.append(bare_cold_start())
            cold.add(ours, base)

            functions.invoke("noop", payload)
            (pid,) = pool.worker_pids()
            idle = subprocess.Popen([sys.executable, "-c", IDLE_JSON], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert idle.stdout is not None and idle.stdin is not None
            idle.stdout.readline()
            time.sleep(0.2)  # let both settle after their last allocation
            memory.add([rss_kb(pid) / 1024], [rss_kb(idle.pid) / 1024])
            memory_pss.add([pss_kb(pid) / 1024], [pss_kb(idle.pid) / 1024])
            idle.stdin.close()
            idle.wait()
            idle.stdout.close()

            boot_folder = Path(tempfile.mkdtemp(prefix="lambdad-bench-boot-"))
            from lambdad.runtime.functions import Functions

            (boot_folder / "functions").mkdir()
            (boot_folder / "functions" / "noop.py").write_text(NOOP)
            (boot_folder / "lambdad.yaml").write_text(MANIFEST)
            fresh = Functions(load_manifest(boot_folder / "lambdad.yaml", env={}), LogBook(boot_folder / "logs"))
            first = timed(lambda f=fresh: f.invoke("noop", payload)) / 1000
            fresh.close()
            shutil.rmtree(boot_folder)
            zygote_boot.add([first], [bare_cold_start()])
    finally:
        functions.close()
        shutil.rmtree(folder)
    return report([warm, cold, memory, memory_pss, zygote_boot], "runtime")


if __name__ == "__main__":
    main(int(os.environ.get("BENCH_REPS", "5")))
