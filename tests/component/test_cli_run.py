"""`lambdad validate`, `invoke` (no daemon: the function runs in the command's own environment) and
`logs`, through `main(argv)` in-process over real manifests, a real state folder and a real worker."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from tests.component.cli import run_cli
from tests.fixtures.manifests import BEHAVE_MANIFEST
from tests.fixtures.projects import project_with
from tests.helpers import write_manifest

project = project_with(BEHAVE_MANIFEST, record_file=None)


def test_validate_ok(project: Path):
    done = run_cli(["validate"], cwd=project)
    assert done.code == 0
    assert done.out == "lambdad.yaml: ok (1 function, 0 triggers)\n"


def test_validate_reports_every_problem_and_exits_2(project: Path):
    write_manifest(
        project,
        """
        version: 1
        functions:
          behave:
            handler: behave.handler
            code: ./functions
            timeout: 0
            memroy: 256
        """,
        name="bad.yaml",
    )
    done = run_cli(["validate", "-f", "bad.yaml"], cwd=project)
    assert done.code == 2
    assert done.out == ""
    assert done.err.splitlines() == [
        "bad.yaml:6:14: functions.behave.timeout: 0 is less than the minimum of 1",
        "bad.yaml:7:5: functions.behave.memroy: unknown key 'memroy' (did you mean 'memory'?)",
    ]


def test_every_command_that_loads_a_manifest_reports_its_problems(project: Path):
    write_manifest(project, "version: 1\nfunctions:\n  f: {handler: nope.handler}\n")
    for args in (["invoke", "f"], ["up"], ["logs", "f"]):
        done = run_cli(args, cwd=project)
        assert done.code == 2, args
        assert done.err.startswith("lambdad.yaml:3:16: functions.f.handler: module 'nope' not found"), args
        assert "Traceback" not in done.err


def test_no_manifest_found(tmp_path: Path):
    done = run_cli(["validate"], cwd=tmp_path)
    assert done.code == 2
    assert done.err == (
        "lambdad: no manifest found: looked for lambdad.yaml and config/lambdad.yaml; use -f FILE\n"
    )


def test_invoke_prints_the_response_and_the_status(project: Path):
    done = run_cli(["invoke", "behave", "--payload", '{"action": "echo", "n": 1}'], cwd=project)
    assert done.code == 0, done.err
    assert json.loads(done.out)["event"] == {"action": "echo", "n": 1}
    assert json.loads(done.err) == {"StatusCode": 200, "ExecutedVersion": "$LATEST"}


def test_invoke_to_an_outfile_like_aws_lambda_invoke(project: Path):
    (project / "event.json").write_text('{"action": "echo", "from": "file"}')
    done = run_cli(["invoke", "behave", "out.json", "--payload", "file://event.json"], cwd=project)
    assert done.code == 0, done.err
    assert json.loads(done.out) == {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
    assert json.loads((project / "out.json").read_text())["event"]["from"] == "file"


@pytest.mark.parametrize(
    ("event", "error_type"),
    [
        ({"action": "raise"}, "ValueError"),
        ({"action": "exit", "code": 2}, "Runtime.ExitError"),
        ({"action": "sleep", "seconds": 5}, "Sandbox.Timedout"),
    ],
)
def test_invoke_function_errors_exit_0_with_function_error(project: Path, event: dict, error_type: str):
    done = run_cli(["invoke", "behave", "out.json", "--payload", json.dumps(event)], cwd=project)
    assert done.code == 0, done.err
    assert json.loads(done.out) == {"StatusCode": 200, "FunctionError": "Unhandled", "ExecutedVersion": "$LATEST"}
    assert json.loads((project / "out.json").read_text())["errorType"] == error_type


def test_invoke_log_tail_is_the_base64_log(project: Path):
    done = run_cli(["invoke", "behave", "out.json", "--payload", '{"action": "log"}', "--log-type", "Tail"],
                   cwd=project)
    assert done.code == 0, done.err
    log = base64.b64decode(json.loads(done.out)["LogResult"]).decode()
    lines = log.splitlines()
    assert lines[0] == "module loaded"
    assert lines[1].startswith("START RequestId: ") and lines[1].endswith(" Version: $LATEST")
    assert "printed line" in lines and lines[-2].startswith("END RequestId: ")
    assert lines[-1].startswith("REPORT RequestId: ") and "Init Duration: " in lines[-1]


def test_invoke_client_context(project: Path):
    cc = base64.b64encode(json.dumps({"custom": {"who": "cli"}}).encode()).decode()
    done = run_cli(["invoke", "behave", "--payload", '{"action": "context"}', "--client-context", cc], cwd=project)
    assert json.loads(done.out)["client_context"]["custom"] == {"who": "cli"}


def test_invoke_dry_run(project: Path):
    done = run_cli(["invoke", "behave", "--invocation-type", "DryRun"], cwd=project)
    assert done.code == 0
    assert json.loads(done.out) == {"StatusCode": 204}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["invoke", "nobody"], "lambdad: Function not found: 'nobody' (functions: behave)\n"),
        (
            ["invoke", "behave", "--payload", "{not json"],
            "lambdad: Could not parse request body into json: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)\n",
        ),
        (
            ["invoke", "behave", "--payload", "file://missing.json"],
            "lambdad: cannot read payload file 'missing.json': No such file or directory\n",
        ),
        (["invoke", "behave", "--client-context", "%%%"], "lambdad: --client-context: Client context must be a valid Base64-encoded JSON object.\n"),
        (["logs", "nobody"], "lambdad: Function not found: 'nobody' (functions: behave)\n"),
        (["logs", "behave", "--since", "yesterday"], "lambdad: --since: 'yesterday' is not a duration: use seconds (90) "
                                                      "or a string such as 90s, 5m, 6h\n"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(project: Path, args: list[str], message: str):
    done = run_cli(args, cwd=project)
    assert done.code == 2
    assert done.err == message
    assert done.out == ""


def test_payload_over_6_mb_is_refused(project: Path):
    (project / "big.json").write_text('"' + "x" * (6 * 1024 * 1024) + '"')
    done = run_cli(["invoke", "behave", "--payload", "file://big.json"], cwd=project)
    assert done.code == 2
    assert done.err == "lambdad: Request must be smaller than 6291456 bytes for the InvokeFunction operation\n"


def test_logs_show_what_invocations_wrote(project: Path):
    run_cli(["invoke", "behave", "--payload", '{"action": "log"}'], cwd=project)
    done = run_cli(["logs", "behave"], cwd=project)
    assert done.code == 0
    messages = [line.split(" ", 1)[1] for line in done.out.splitlines()]
    assert messages[0] == "module loaded"
    assert "printed line" in messages
    assert messages[-1].startswith("REPORT RequestId: ")
    stamp = done.out.split(" ", 1)[0]
    assert stamp.endswith("Z") and stamp[10] == "T"
    assert run_cli(["logs", "behave", "--since", "1h"], cwd=project).out == done.out
    assert (project / ".lambdad" / "logs" / "behave.log").is_file()


def test_logs_since_leaves_out_older_records(project: Path):
    logs = project / ".lambdad" / "logs"
    logs.mkdir(parents=True)
    now = time.time()  # (the command reads the wall clock: the records are placed around it)
    (logs / "behave.log").write_text(
        json.dumps({"t": now - 3600, "r": "a", "m": "an hour ago"}) + "\n"
        + json.dumps({"t": now - 60, "r": "b", "m": "a minute ago"}) + "\n"
    )
    done = run_cli(["logs", "behave", "--since", "10m"], cwd=project)
    assert [line.split(" ", 1)[1] for line in done.out.splitlines()] == ["a minute ago"]
