"""The `lambdad` command as a user runs it, for what only a real process shows: `logs --follow`
printing as another process invokes. The commands that end on their own are driven in-process
(tests/component/test_cli_run.py)."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from tests.fixtures.manifests import BEHAVE_MANIFEST
from tests.fixtures.projects import project_with
from tests.helpers import lambdad_cmd, run_cli

project = project_with(BEHAVE_MANIFEST, record_file=None)


def test_logs_follow_prints_new_records(project: Path):
    follower = subprocess.Popen(
        lambdad_cmd("logs", "behave", "--follow"), cwd=project, stdout=subprocess.PIPE, text=True
    )
    deadline = threading.Timer(30, follower.kill)  # a missing line fails the test instead of hanging it
    deadline.start()
    try:
        assert follower.stdout is not None
        # Whether the invocation lands before or after the follower starts, each line shows once.
        run_cli("invoke", "behave", "--payload", '{"action": "log"}', cwd=project)
        seen = []
        for line in follower.stdout:
            seen.append(line.split(" ", 1)[1].rstrip("\n"))
            if seen[-1].startswith("REPORT"):
                break
        assert seen.count("printed line") == 1
        assert seen[0] == "module loaded"
    finally:
        deadline.cancel()
        follower.kill()
        follower.wait(5)
        if follower.stdout is not None:
            follower.stdout.close()
