"""The example that `make up` runs stays valid and its handlers work."""

import json
from pathlib import Path

from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]


def test_example_manifest_is_valid():
    done = run_cli("validate", "-f", "config/lambdad.yaml", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "config/lambdad.yaml: ok (5 functions, 4 triggers)\n"


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
