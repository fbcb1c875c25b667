"""Hot reload through a real daemon: manifest saves applied as a diff, handler edits recycling only
their own function's workers, and files dropped during a reload each handled exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from lambdad.store import Store, rules
from tests.helpers import all_settled, any_free_port, daemon_info, json_lines, run_cli, wait_for, write_manifest
from tests.integration.test_daemon import Running

#: A handler that records which code version ran it, in which process, on which event.
APP = '''import json, os
VERSION = "{version}"


def handler(event, context):
    with open(os.environ["RECORD_FILE"], "a") as f:
        f.write(json.dumps({{"fn": context.function_name, "version": VERSION, "pid": os.getpid(),
                            "event": event}}) + "\\n")
    return VERSION
'''


def save(path: Path, text: str) -> None:
    """Save as editors do: write a temporary file, then rename it over the original."""
    tmp = path.with_name(f".{path.name}.swp")
    tmp.write_text(any_free_port(text) if path.suffix == ".yaml" else text)
    os.replace(tmp, path)


def write_app(folder: Path, version: str, name: str = "app.py") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save(folder / name, APP.format(version=version))


def records(project: Path) -> list[dict]:
    return json_lines(project / "received.jsonl")


def keys(project: Path, fn: str) -> list[str]:
    return [r["event"]["Records"][0]["s3"]["object"]["key"] for r in records(project) if r["fn"] == fn
            and "Records" in r["event"]]


def invoke_async(project: Path, fn: str, payload: dict) -> None:
    done = run_cli("invoke", fn, "--invocation-type", "Event", "--payload", json.dumps(payload), cwd=project)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECORD_FILE", str(tmp_path / "received.jsonl"))
    write_app(tmp_path / "a", "v1")
    write_app(tmp_path / "b", "b1")
    return tmp_path


BASE = """
version: 1
defaults:
  environment: {RECORD_FILE: "${RECORD_FILE}"}
  async: {maximum_retry_attempts: 0}
functions:
  app:
    handler: app.handler
    code: ./a
  other:
    handler: app.handler
    code: ./b
"""


def start(project: Path, manifest: str) -> Running:
    write_manifest(project, manifest)
    daemon = Running(project)
    daemon.wait_line("ready in ")
    return daemon


def reloaded(daemon: Running, count: int = 1) -> str:
    """Wait for the `count`-th reload line and return it."""
    lines = wait_for(lambda: [ln for ln in daemon.lines if ln.startswith("reload (")][count - 1:] or None,
                     timeout=15, what=f"reload #{count} (printed: {daemon.lines})")
    return lines[0]


def test_a_function_and_a_bucket_added_by_a_save_handle_a_dropped_file(project: Path):
    daemon = start(project, BASE)
    try:
        save(project / "lambdad.yaml", BASE + """
  thumbs:
    handler: app.handler
    code: ./a
    events:
      - s3: {bucket: photos, events: ["s3:ObjectCreated:*"]}
buckets:
  photos: {path: ./buckets/photos}
""")
        line = reloaded(daemon)
        assert "+function thumbs" in line and "+bucket photos" in line and line.endswith(" ms")
        (project / "buckets" / "photos" / "cat.jpg").write_bytes(b"meow")
        wait_for(lambda: keys(project, "thumbs") == ["cat.jpg"], what="the new function handling the new bucket")
    finally:
        code = daemon.stop()
    assert code == 0


FILTERED = BASE + """
buckets:
  uploads: {path: ./buckets/uploads}
  other: {path: ./buckets/other}
"""


def with_filter(prefix: str) -> str:
    return FILTERED.replace("    code: ./a\n", f"""    code: ./a
    events:
      - s3: {{bucket: uploads, events: ["s3:ObjectCreated:*"], filter: {{prefix: {prefix}}}}}
""", 1).replace("    code: ./b\n", """    code: ./b
    events:
      - s3: {bucket: other, events: ["s3:ObjectCreated:*"]}
""", 1)


def test_a_changed_filter_applies_and_the_other_bucket_keeps_its_watch(project: Path):
    daemon = start(project, with_filter("a/"))
    up = project / "buckets" / "uploads"
    try:
        (up / "a").mkdir()
        (up / "a" / "1.txt").write_text("1")
        wait_for(lambda: keys(project, "app") == ["a/1.txt"], what="the first filter at work")
        app_pid = records(project)[0]["pid"]
        save(project / "lambdad.yaml", with_filter("b/"))
        line = reloaded(daemon)
        assert "~bucket uploads" in line and "~function app" in line and "new environments" not in line
        (up / "a" / "2.txt").write_text("2")  # no longer matches
        (up / "b").mkdir()
        (up / "b" / "3.txt").write_text("3")
        (project / "buckets" / "other" / "x.txt").write_text("x")
        wait_for(lambda: keys(project, "app") == ["a/1.txt", "b/3.txt"] and keys(project, "other") == ["x.txt"],
                 what="the new filter at work")
        wait_for(lambda: all_settled(project), what="every event settled")
        assert keys(project, "app") == ["a/1.txt", "b/3.txt"]
        assert {r["pid"] for r in records(project) if r["fn"] == "app"} == {app_pid}  # a trigger edit: still warm
    finally:
        code = daemon.stop()
    assert code == 0


SCHEDULED = BASE + """
    events:  # (other's)
      - schedule: {name: keep, expression: "rate(1 minute)"}
      - schedule: {name: gone, expression: "rate(1 minute)", input: {"rule": "gone"}}
"""


def test_a_removed_schedule_stops_and_the_unchanged_one_fires_once(project: Path):
    # Both rules were created 50 s ago (as if by an earlier run): both are due in about 10 s.
    store = Store.in_state_folder(project / ".lambdad")
    created = time.time() - 50
    for name in ("keep", "gone"):
        store.write(lambda tx, n=name: rules.ensure(tx, n, "other", "rate(1 minute)", "UTC", created))
    store.close()
    daemon = start(project, SCHEDULED)
    try:
        save(project / "lambdad.yaml", SCHEDULED.replace(
            '      - schedule: {name: gone, expression: "rate(1 minute)", input: {"rule": "gone"}}\n', ""))
        assert reloaded(daemon).startswith("reload (saved): ~function other, -schedule gone in ")
        wait_for(lambda: [r for r in records(project) if r["fn"] == "other"], timeout=20, what="the kept rule's run")
        wait_for(lambda: all_settled(project), what="every event settled")
        fired = [r["event"] for r in records(project)]
        assert len(fired) == 1 and fired[0]["resources"][0].endswith(":rule/keep")  # `gone` was due too
    finally:
        code = daemon.stop()
    assert code == 0


def test_an_invalid_save_keeps_the_running_configuration_until_fixed(project: Path):
    daemon = start(project, DROPS)
    try:
        broken = DROPS.replace("    code: ./b\n", "    code: ./b\n    timeout: 9000\n    memroy: 256\n")
        save(project / "lambdad.yaml", broken)
        reloaded(daemon)
        errors = wait_for(lambda: [ln for ln in daemon.lines if ln.startswith("lambdad.yaml:")] or None,
                          what="the errors")
        assert sorted(errors) == sorted([
            "lambdad.yaml:12:14: functions.other.timeout: 9000 is greater than the maximum of 900",
            "lambdad.yaml:13:5: functions.other.memroy: unknown key 'memroy' (did you mean 'memory'?)",
        ])
        status = run_cli("status", cwd=project)
        assert status.returncode == 0, status.stderr
        assert "configuration: stale" in status.stdout and errors[0] in status.stdout
        (project / "buckets" / "inbox" / "while-stale.txt").write_text("x")  # the previous configuration runs
        wait_for(lambda: keys(project, "other") == ["while-stale.txt"], what="a file handled while stale")
        invoked = run_cli("invoke", "app", "--payload", '{"while": "stale"}', cwd=project)  # not locked out
        assert invoked.returncode == 0 and json.loads(invoked.stdout) == "v1"
        assert invoked.stderr.startswith("lambdad: warning: lambdad.yaml has problems (`lambdad validate` lists them)")
        assert run_cli("validate", cwd=project).returncode == 2  # validate judges the file on disk
        save(project / "lambdad.yaml", DROPS.replace("    code: ./b\n", "    code: ./b\n    timeout: 20\n"))
        assert reloaded(daemon, 2).startswith("reload (saved): ~function other (new environments) in ")
        assert "configuration: current" in run_cli("status", cwd=project).stdout
    finally:
        code = daemon.stop()
    assert code == 0


def test_sighup_reloads_too(project: Path):
    daemon = start(project, BASE)
    try:
        daemon.proc.send_signal(signal.SIGHUP)
        assert reloaded(daemon).startswith("reload (SIGHUP): nothing changed in ")
    finally:
        code = daemon.stop()
    assert code == 0


def test_a_handler_edit_recycles_only_its_functions_workers(project: Path):
    daemon = start(project, BASE)
    try:
        invoke_async(project, "app", {"n": 1})
        invoke_async(project, "other", {"n": 1})
        wait_for(lambda: len(records(project)) == 2, what="the first invocations")
        before = {r["fn"]: r for r in records(project)}
        write_app(project / "a", "v2")  # the same size as v1: a stale .pyc would go unnoticed
        wait_for(lambda: any(ln.startswith("code changed in a: app ") for ln in daemon.lines), what="the recycle")
        invoke_async(project, "app", {"n": 2})
        invoke_async(project, "other", {"n": 2})
        wait_for(lambda: len(records(project)) == 4, what="the second invocations")
        after = {r["fn"]: r for r in records(project)[2:]}
        assert (after["app"]["version"], before["app"]["version"]) == ("v2", "v1")
        assert after["app"]["pid"] != before["app"]["pid"]  # a cold start on the new code
        assert after["other"]["pid"] == before["other"]["pid"]  # unrelated: still warm
    finally:
        code = daemon.stop()
    assert code == 0


def test_a_broken_import_is_reported_then_the_fix_works(project: Path):
    daemon = start(project, BASE)
    try:
        save(project / "a" / "app.py", "import json\nimport module_that_is_not_there\n")
        wait_for(lambda: any(ln.startswith("code changed in a: app ") for ln in daemon.lines), what="the recycle")
        invoke_async(project, "app", {"n": 1})
        error = wait_for(lambda: next((ln for ln in daemon.lines if "[ERROR] Runtime.ImportModuleError" in ln), None),
                         what="the import error")
        assert "Unable to import module 'app': No module named 'module_that_is_not_there'" in error
        assert any('app.py", line 2, in <module>' in ln for ln in daemon.lines)
        write_app(project / "a", "v3")
        wait_for(lambda: sum(ln.startswith("code changed in a: app ") for ln in daemon.lines) == 2, what="recycle 2")
        invoke_async(project, "app", {"n": 2})
        wait_for(lambda: [r["version"] for r in records(project)] == ["v3"], what="the fixed code running")
    finally:
        code = daemon.stop()
    assert code == 0


DROPS = BASE + """
    events:  # (other's)
      - s3: {bucket: inbox, events: ["s3:ObjectCreated:*"]}
buckets:
  inbox: {path: ./buckets/inbox}
"""


def test_files_dropped_during_reloads_are_each_handled_exactly_once(project: Path):
    daemon = start(project, DROPS)
    inbox = project / "buckets" / "inbox"
    stop = threading.Event()
    written: list[str] = []

    def drop() -> None:
        while not stop.is_set() and len(written) < 2000:
            name = f"f{len(written):05d}.txt"
            (inbox / name).write_text(name)
            written.append(name)
            stop.wait(0.002)

    writer = threading.Thread(target=drop)
    try:
        writer.start()
        edits = [  # while files keep landing: the bucket watched anew, retargeted, its function recycled...
            DROPS.replace("{path: ./buckets/inbox}", "{path: ./buckets/inbox, ignore: ['*.bak']}"),
            DROPS.replace('events: ["s3:ObjectCreated:*"]', 'events: ["s3:ObjectCreated:Put", "s3:ObjectCreated:Copy"]'),
            DROPS.replace("    code: ./b\n", "    code: ./b\n    memory: 256\n"),
            DROPS.replace("\nbuckets:", "\n  extra:\n    handler: app.handler\n    code: ./b\nbuckets:"),
            DROPS,
        ]
        expected = [  # (each edit is made to the original)
            "~bucket inbox", "~function other, ~bucket inbox", "~function other (new environments), ~bucket inbox",
            "+function extra, ~function other (new environments)", "-function extra"]
        for i, (text, summary) in enumerate(zip(edits, expected, strict=True), 1):
            wait_for(lambda n=i: len(written) >= 100 * n, what="more files dropped")
            save(project / "lambdad.yaml", text)
            assert reloaded(daemon, i).startswith(f"reload (saved): {summary} in ")
        stop.set()
        writer.join()
        wait_for(lambda: len(keys(project, "other")) >= len(written), timeout=60,
                 what=f"{len(written)} files handled (have {len(keys(project, 'other'))})")
        wait_for(lambda: all_settled(project), what="every event settled")
        assert sorted(keys(project, "other")) == sorted(written)  # each exactly once
    finally:
        stop.set()
        code = daemon.stop()
    assert code == 0


ROUTED = BASE + """  web:
    handler: app.handler
    code: ./a
    events:
      - api: {listener: web, route: "GET /one"}
listeners:
  web: {port: 0}
"""


def test_routes_and_function_urls_follow_saves(project: Path):
    def get(url: str) -> int:
        done = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url], capture_output=True,
                              text=True, timeout=30)
        return int(done.stdout)

    daemon = start(project, ROUTED)
    try:
        web = daemon_info(project)["listeners"]["web"]
        assert (get(f"{web}/one"), get(f"{web}/two")) == (200, 404)
        save(project / "lambdad.yaml", ROUTED.replace('route: "GET /one"}', 'route: "GET /two"}\n      - url: {}'))
        assert reloaded(daemon).startswith("reload (saved): ~function web, +listener web.url in ")
        url = wait_for(lambda: daemon_info(project).get("urls", {}).get("web"), what="the URL in daemon.json")
        daemon.wait_line(f"function URL of web: {url}/")  # said where it is
        assert (get(f"{web}/one"), get(f"{web}/two"), get(f"{url}/any/path")) == (404, 200, 200)
        save(project / "lambdad.yaml", ROUTED)
        assert reloaded(daemon, 2).startswith("reload (saved): ~function web, -listener web.url in ")
        assert (get(f"{web}/one"), get(f"{web}/two")) == (200, 404)
        assert daemon_info(project)["urls"] == {}
    finally:
        code = daemon.stop()
    assert code == 0


def test_commands_use_the_configuration_of_the_last_good_save(project: Path):
    daemon = start(project, BASE)
    try:
        added = BASE + "  third:\n    handler: app.handler\n    code: ./a\n"
        save(project / "lambdad.yaml", added)
        assert reloaded(daemon).startswith("reload (saved): +function third in ")
        assert "third:" in (project / ".lambdad" / "running.yaml").read_text()  # kept at once, not at the next error
        save(project / "lambdad.yaml", added + "  broken: {handler: nope}\n")
        reloaded(daemon, 2)
        invoked = run_cli("invoke", "third", cwd=project)  # known from the good save, not the first one
        assert invoked.returncode == 0, invoked.stderr
        assert json.loads(invoked.stdout) == "v1" and "has problems" in invoked.stderr
    finally:
        code = daemon.stop()
    assert code == 0
