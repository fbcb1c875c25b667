"""The example that `make up` runs stays valid and its handlers work."""

import json
from pathlib import Path

from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]


def test_example_manifest_is_valid():
    done = run_cli("validate", "-f", "config/lambdad.yaml", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "config/lambdad.yaml: ok (6 functions, 7 triggers)\n"


def test_demo_hello_answers(tmp_path: Path):
    done = run_cli(
        "invoke", "-f", str(ROOT / "config" / "lambdad.yaml"), "--state-dir", str(tmp_path), "hello",
        "--payload", '{"name": "test"}', cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["message"] == "hello, test"


def test_demo_flaky_fails_as_designed(tmp_path: Path):
    done = run_cli(
        "invoke", "-f", str(ROOT / "config" / "lambdad.yaml"), "--state-dir", str(tmp_path), "flaky", cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["errorType"] == "RuntimeError"
    assert json.loads(done.stderr)["FunctionError"] == "Unhandled"


def test_the_demo_shows_every_trigger_working(tmp_path: Path):
    """`make up`'s manifest, on free ports: a bucket, a schedule, the ALB listener, an API route, a
    queue and a stream mapping, the Invoke API, and a failing function whose event ends in the
    dead-letter queue."""
    import shutil
    import subprocess

    from tests.helpers import daemon_info, wait_for
    from tests.integration.test_daemon import Running

    shutil.copytree(ROOT / "config", tmp_path / "config", ignore=shutil.ignore_patterns(".lambdad", "buckets",
                                                                                         "__pycache__"))
    manifest = tmp_path / "config" / "lambdad.yaml"
    text = manifest.read_text().replace("web: {host: 127.0.0.1, port: 8080}", "web: {host: 127.0.0.1, port: 0}")
    manifest.write_text(text + "api: {port: 0}\n")
    daemon = Running(tmp_path)
    try:
        daemon.wait_line("ready in ")
        info = daemon_info(tmp_path / "config")
        page = subprocess.run(["curl", "-s", f"{info['listeners']['web']}/hello?name=demo"], capture_output=True,
                              text=True, timeout=30)
        assert json.loads(page.stdout) == {"message": "hello, demo", "path": "/hello"}
        greeting = subprocess.run(["curl", "-s", f"{info['listeners']['web']}/greet/route"], capture_output=True,
                                  text=True, timeout=30)
        assert json.loads(greeting.stdout)["message"] == "hello, route"  # API Gateway 2.0: any JSON is a 200
        assert run_cli("queue", "send", "orders", '{"id": 7}', cwd=tmp_path).returncode == 0
        wait_for(lambda: any("orders | order " in line and '{"id": 7}' in line for line in daemon.lines),
                 what="the SQS mapping's batch")
        assert run_cli("stream", "put", "clicks", "home", "--partition-key", "user-1", cwd=tmp_path).returncode == 0
        wait_for(lambda: any("orders | click user-1 " in line and line.endswith(": home") for line in daemon.lines),
                 what="the Kinesis mapping's batch")
        uploads = tmp_path / "config" / "buckets" / "uploads"
        (uploads / "images").mkdir(parents=True, exist_ok=True)
        (uploads / "images" / "cat.jpg").write_bytes(b"jpeg")
        daemon.wait_line("thumbnail | ObjectCreated:Put s3://uploads/images/cat.jpg (4 bytes)")
        assert run_cli("fire", "sweep-every-minute", cwd=tmp_path).returncode == 0
        wait_for(lambda: any(" | sweep at " in line and "rule/sweep-every-minute" in line for line in daemon.lines),
                 what="the scheduled function")
        answer = run_cli("invoke", "hello", "--payload", '{"name": "api"}', cwd=tmp_path)
        assert json.loads(answer.stdout)["message"] == "hello, api"
        (uploads / "fail").mkdir(exist_ok=True)
        (uploads / "fail" / "x.txt").write_text("boom")
        dead = wait_for(lambda: json.loads(run_cli("dlq", "list", "--json", cwd=tmp_path).stdout) or None,
                        timeout=30, what="the failing event in the dead-letter list")
        assert dead[0]["function"] == "flaky" and dead[0]["condition"] == "RetriesExhausted"
        received = json.loads(run_cli("queue", "receive", "failed-events", "--json", cwd=tmp_path).stdout)
        assert json.loads(received[0]["Body"])["Records"][0]["s3"]["object"]["key"] == "fail/x.txt"
    finally:
        code = daemon.stop()
    assert code == 0
