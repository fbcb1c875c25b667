"""The real daemon when its disk fills up and frees again (a lowered file-size limit: writes fail as on
a full disk), and when its state folder is deleted under it."""

from __future__ import annotations

import resource
import shutil
from pathlib import Path

# in-process: the tests poll with it, and a poll should not cost an interpreter start
from tests.component.cli import cli_json
from tests.fixtures.manifests import UPLOADS_MANIFEST
from tests.fixtures.projects import project_with
from tests.helpers import json_lines, run_cli, wait_for
from tests.integration.test_daemon import Running, gone

project = project_with(UPLOADS_MANIFEST)


def keys(project: Path) -> list[str]:
    return [r["event"]["Records"][0]["s3"]["object"]["key"] for r in json_lines(project / "received.jsonl")]


def status(project: Path) -> dict:
    return cli_json(project, "status")


def test_a_file_dropped_while_the_disk_is_full_fires_once_it_has_room(project: Path):
    daemon = Running(project)
    try:
        daemon.wait_line("ready in ")
        uploads = project / "buckets" / "uploads"
        (uploads / "before.txt").write_text("x")
        wait_for(lambda: keys(project) == ["before.txt"], what="the first event")
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        # Writes past 8 KiB into any file now fail (EFBIG): SQLite's next WAL frames do not fit.
        resource.prlimit(daemon.proc.pid, resource.RLIMIT_FSIZE, (8192, hard))
        (uploads / "while-full.txt").write_text("y")
        line = daemon.wait_line("warning: the bucket watcher failed: ")
        assert "retrying with backoff, nothing accepted is lost" in line
        try:
            wait_for(lambda: "buckets" in status(project)["daemon"].get("failing", {}), what="status to show it")
        except AssertionError as e:
            raise AssertionError(f"{e}: {status(project)['daemon']}; said {daemon.lines}") from None
        text = run_cli("status", cwd=project).stdout
        assert "failing: the bucket watcher: " in text
        assert keys(project) == ["before.txt"]
        resource.prlimit(daemon.proc.pid, resource.RLIMIT_FSIZE, (soft, hard))
        wait_for(lambda: keys(project) == ["before.txt", "while-full.txt"], timeout=40,
                 what="the file dropped while full to fire")
        daemon.wait_line("warning: the bucket watcher works again")
        try:
            wait_for(lambda: not status(project)["daemon"].get("failing"), timeout=20, what="status to show it works")
        except AssertionError as e:
            raise AssertionError(f"{e}: {status(project)['daemon'].get('failing')}; said {daemon.lines}") from None
        assert len([x for x in daemon.lines if "bucket watcher failed" in x]) == 1  # said once, not per retry
    finally:
        code = daemon.stop()
    assert code == 0


def test_deleting_the_state_folder_stops_the_daemon_with_an_error(project: Path):
    daemon = Running(project)
    daemon.wait_line("ready in ")
    children = wait_for(daemon.tree, what="the runtime process to start")
    shutil.rmtree(project / ".lambdad")
    try:
        code = daemon.proc.wait(20)
    finally:
        if daemon.proc.poll() is None:
            daemon.stop()
    daemon._reader.join(5)
    assert daemon.proc.stdout is not None
    daemon.proc.stdout.close()
    assert code == 1
    # rmtree empties the folder before removing it: the daemon may notice its lock file, its store
    # or the folder itself go first, and says which; each names a path in the state folder.
    state = str(project / ".lambdad")
    assert any(line.startswith("error: ") and state in line and "deleted" in line and "while lambdad ran" in line
               for line in daemon.lines), daemon.lines
    assert daemon.lines[-1] == "stopped"
    wait_for(lambda: gone(children), what="no worker process left behind")
    assert not (project / ".lambdad").exists()  # not recreated by the stopping daemon
