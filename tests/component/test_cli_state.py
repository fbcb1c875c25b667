"""The commands that read and change a state folder with no daemon running (status, dlq, queue, stream
put, invoke --invocation-type Event), through `main(argv)` in-process."""

from __future__ import annotations

import json
from pathlib import Path

from tests.component.cli import cli_json, run_cli
from tests.fixtures.manifests import ASYNC_MANIFEST, STREAMS_MANIFEST, UPLOADS_MANIFEST
from tests.fixtures.projects import project_with

async_project = project_with(ASYNC_MANIFEST)
streams_project = project_with(STREAMS_MANIFEST)
bucket_project = project_with(UPLOADS_MANIFEST)


def status(project: Path) -> dict:
    return cli_json(project, "status")["functions"]["recorder"]


def invoke_event(project: Path, payload: dict) -> None:
    done = run_cli(["invoke", "recorder", "--invocation-type", "Event", "--payload", json.dumps(payload)], cwd=project)
    assert done.code == 0, done.err
    assert json.loads(done.out) == {"StatusCode": 202}


def test_cli_listing_commands_and_their_errors(async_project: Path):
    project = async_project
    invoke_event(project, {"n": 1})
    table = run_cli(["status"], cwd=project)
    assert table.out.splitlines()[0] == "daemon: not running"
    assert "recorder" in table.out and "QUEUED" in table.out
    assert run_cli(["dlq", "list"], cwd=project).out == "no dead letters\n"
    assert run_cli(["queue", "list"], cwd=project).out.splitlines()[0].split() == [
        "QUEUE", "VISIBLE", "IN", "FLIGHT", "DELAYED", "DEAD-LETTER", "QUEUE"]
    for args, message in [
        (["dlq", "show", "42"], "lambdad: no dead letter with id 42 (see lambdad dlq list)\n"),
        (["dlq", "redrive"], "lambdad: give dead-letter ids, or --all\n"),
        (["dlq", "redrive", "1", "--all"], "lambdad: give dead-letter ids or --all, not both\n"),
        (["queue", "receive", "nope"], "lambdad: queue 'nope' is not defined (queues: failed, done)\n"),
        (["queue", "receive", "failed", "--max", "11"], "lambdad: --max must be between 1 and 10 (as SQS allows)\n"),
        (["invoke", "recorder", "--invocation-type", "Event", "--payload", "{bad"],
         "lambdad: Could not parse request body into json: Expecting property name enclosed in double quotes: "
         "line 1 column 2 (char 1)\n"),
    ]:
        done = run_cli(args, cwd=project)
        assert (done.code, done.err) == (2, message), args
    big = project / "big.json"
    big.write_text('"' + "x" * (1024 * 1024) + '"')
    done = run_cli(["invoke", "recorder", "--invocation-type", "Event", "--payload", "file://big.json"], cwd=project)
    assert done.err == "lambdad: Request must be smaller than 1048576 bytes for the InvokeFunction operation\n"
    assert status(project)["queued"] == 1  # nothing was added by the refused calls
    assert run_cli(["queue", "purge", "done"], cwd=project).out == "purged 0 message(s) from done\n"


def test_status_before_any_daemon_ran_the_mapping(streams_project: Path):
    project = streams_project
    for key in ("a", "b", "c"):
        assert run_cli(["stream", "put", "clicks", "x", "--partition-key", key], cwd=project).code == 0
    lanes = json.loads(run_cli(["status", "--json"], cwd=project).out)["stream_mappings"]["reader/clicks"]
    assert [lane["position"] for lane in lanes] == [None] * 4
    assert sum(lane["lag"] for lane in lanes) == 3  # TRIM_HORIZON: everything put so far is still to do
    table = run_cli(["status"], cwd=project).out
    assert "not started" in table


def test_a_command_run_without_a_daemon_sets_a_truncated_store_aside_and_says_so(bucket_project: Path):
    project = bucket_project
    state = project / ".lambdad"
    assert run_cli(["invoke", "created", "--invocation-type", "Event", "--payload", "{}"], cwd=project).code == 0
    (state / "logs").mkdir(exist_ok=True)
    (state / "logs" / "created.log").write_text("")
    (state / "store.sqlite3").write_bytes(b"")
    done = run_cli(["status"], cwd=project)
    assert done.code == 0, done.err
    assert f"lambdad: warning: the store {state / 'store.sqlite3'} was empty (0 bytes)" in done.err
    assert [p.name.split(".damaged-")[0] for p in state.iterdir() if ".damaged-" in p.name] == ["store.sqlite3"]
