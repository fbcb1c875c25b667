"""HTTP: the daemon's Invoke API and an ALB listener against a bare echo server on the same server
library (uvicorn + httptools + uvloop), measured in the same run.

- warm invoke over keep-alive `http.client`: daemon (no-op handler) vs echo server + a bare worker
  round trip (a length-prefixed JSON exchange over a Unix socketpair with a persistent child);
  goal p50 ≤ 1.5x that sum. The same for the ALB listener.
- boto3 `invoke`: daemon vs boto3 against the echo server + a worker round trip; goal p50 ≤ 1.2x.
- throughput: client processes with one keep-alive connection each, for 5 s, against a function
  with two warm workers (reserved_concurrency 2): 2 clients (one per worker), and 4 (Lambda
  does not queue a sync call: a 429 is retried at once and not counted); goal ≥ 0.6x the echo
  server saturated by 4 clients.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from tests.bench.bench_runtime import EVENT, BareSocketChild
from tests.bench.common import Figure, report, timed

ECHO_SERVER = r"""
import sys, uuid, uvicorn

async def app(scope, receive, send):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"x-amz-executed-version", b"$LATEST"), (b"x-amzn-requestid", str(uuid.uuid4()).encode())]})
    await send({"type": "http.response.body", "body": body})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http="httptools", loop="uvloop", log_level="warning",
            access_log=False, lifespan="off")
"""

NOOP = """
def handler(event, context):
    return {"ok": True}

def route(event, context):
    return {"ok": True}  # API Gateway (2.0) makes a 200 JSON response of it

def alb(event, context):
    return {"statusCode": 200, "isBase64Encoded": False, "headers": {"content-type": "application/json"},
            "body": '{"ok": true}'}
"""

INVOKE_PATH = "/2015-03-31/functions/noop/invocations"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


class Keepalive:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port)

    def post(self, path: str, body: bytes) -> int:
        self.conn.request("POST", path, body)
        response = self.conn.getresponse()
        response.read()
        return response.status

    def get(self, path: str) -> int:
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        response.read()
        return response.status


def boto3_client(port: int):
    import boto3
    from botocore.config import Config

    return boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id="any", aws_secret_access_key="any",
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def invoke(client, payload: bytes) -> bytes:
    return client.invoke(FunctionName="noop", Payload=payload)["Payload"].read()


def _hammer(port: int, path: str, seconds: float, out: multiprocessing.Queue) -> None:
    conn, body, ok, throttled = Keepalive(port), json.dumps(EVENT).encode(), 0, 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        status = conn.post(path, body)
        if status == 200:
            ok += 1
        else:
            throttled += 1
    out.put((ok, throttled))


def saturation(port: int, path: str, clients: int = 4, seconds: float = 5.0) -> tuple[float, int]:
    out: multiprocessing.Queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_hammer, args=(port, path, seconds, out)) for _ in range(clients)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 30) for _ in procs]
    for p in procs:
        p.join()
    return sum(r[0] for r in results) / seconds, sum(r[1] for r in results)


def project(folder: Path, api_port: int, web_port: int) -> None:
    (folder / "fn").mkdir(parents=True)
    (folder / "fn" / "noop.py").write_text(NOOP)
    (folder / "lambdad.yaml").write_text(f"""version: 1
api: {{port: {api_port}}}
listeners:
  web: {{port: {web_port}}}
functions:
  noop:
    handler: noop.handler
    code: ./fn
    reserved_concurrency: 2
  web:
    handler: noop.alb
    code: ./fn
    events:
      - alb: {{listener: web, path: /alb/*}}
  route:
    handler: noop.route
    code: ./fn
    events:
      - api: {{listener: web, route: "GET /api/{{id}}"}}
""")


def main(reps: int = 3, n: int = 3000, boto_n: int = 1000) -> list[dict]:
    api = Figure("API warm invoke (http.client keep-alive)", "µs", goal="p50 ≤ 1.5× (echo + worker RT)")
    alb = Figure("ALB listener request (http.client keep-alive)", "µs", goal="p50 ≤ 1.5× (echo + worker RT)")
    route = Figure("API Gateway route request (http.client keep-alive)", "µs",
                   goal="(information) vs echo + worker RT")
    route_alb = Figure("API Gateway route vs ALB listener request", "µs", goal="(information)")
    boto = Figure("boto3 invoke", "µs", goal="p50 ≤ 1.2× (boto3→echo + worker RT)")
    rate = Figure("throughput, 2 warm workers, 2 clients", "req/s", goal="≥ 0.6× echo saturated (4 clients)")
    rate4 = Figure("throughput, 2 warm workers, 4 clients", "req/s", goal="(429s retried, not counted)")
    payload = json.dumps(EVENT).encode()
    for _ in range(reps):
        base = Path(tempfile.mkdtemp(prefix="lambdad-bench-http-"))
        echo_port, api_port, web_port = free_port(), free_port(), free_port()
        project(base, api_port, web_port)
        echo = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(echo_port)])
        daemon = subprocess.Popen([sys.executable, "-m", "lambdad", "up"], cwd=base, stdout=subprocess.DEVNULL)
        bare = BareSocketChild()
        try:
            for port in (echo_port, api_port, web_port):
                wait_port(port)
            e, a, w = Keepalive(echo_port), Keepalive(api_port), Keepalive(web_port)
            for _ in range(300):  # warm-up: connections, workers, caches
                e.post(INVOKE_PATH, payload), a.post(INVOKE_PATH, payload), w.get("/alb/x"), bare.round_trip()
                w.get("/api/7")
            assert w.get("/api/7") == 200 and w.get("/alb/x") == 200, "the listener does not answer"
            echo_s, rt_s, api_s, alb_s, route_s = [], [], [], [], []
            for _ in range(n):  # interleaved, so drift hits all of them alike
                echo_s.append(timed(partial(e.post, INVOKE_PATH, payload)))
                rt_s.append(timed(bare.round_trip))
                api_s.append(timed(partial(a.post, INVOKE_PATH, payload)))
                alb_s.append(timed(partial(w.get, "/alb/x")))
                route_s.append(timed(partial(w.get, "/api/7")))
            floor = [x + y for x, y in zip(echo_s, rt_s, strict=True)]
            api.add(api_s, floor)
            alb.add(alb_s, floor)
            route.add(route_s, floor)
            route_alb.add(route_s, alb_s)
            to_echo, to_daemon = boto3_client(echo_port), boto3_client(api_port)
            for _ in range(100):
                to_echo.invoke(FunctionName="noop", Payload=payload), to_daemon.invoke(FunctionName="noop",
                                                                                       Payload=payload)
            b_echo, b_ours, b_rt = [], [], []
            for _ in range(boto_n):
                b_echo.append(timed(partial(invoke, to_echo, payload)))
                b_rt.append(timed(bare.round_trip))
                b_ours.append(timed(partial(invoke, to_daemon, payload)))
            boto.add(b_ours, [x + y for x, y in zip(b_echo, b_rt, strict=True)])
            echo_rate, _ = saturation(echo_port, INVOKE_PATH)
            two, _ = saturation(api_port, INVOKE_PATH, clients=2)  # one per worker: no throttles
            four, throttled = saturation(api_port, INVOKE_PATH)
            for figure, ours in ((rate, two), (rate4, four)):
                figure.subject.append(ours)
                figure.subject_p99.append(ours)
                figure.baseline.append(echo_rate)
                figure.baseline_p99.append(echo_rate)
            print(f"[http] through the daemon: {two:.0f} req/s with 2 clients, {four:.0f} with 4 ({throttled} "
                  f"throttled and retried); echo {echo_rate:.0f} req/s", flush=True)
        finally:
            bare.close()
            echo.terminate()
            daemon.send_signal(signal.SIGINT)
            daemon.wait(30)
            echo.wait(30)
            shutil.rmtree(base, ignore_errors=True)
    return report([api, alb, route, route_alb, boto, rate, rate4], "http")


if __name__ == "__main__":
    main(int(os.environ.get("BENCH_REPS", "3")))
