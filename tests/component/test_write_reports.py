"""What the worker's audit hook reports as written, in a real interpreter with the hook installed
(an audit hook cannot be removed, so each case runs in a process of its own): every way a handler
writes a path, each path once, in every thread, nothing from reads or from a process it forks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRELUDE = """
import json, os, shutil, socket, sys, threading
from lambdad.runtime import wire, writes
mine, theirs = socket.socketpair()
writes._reports, writes._pid = mine, os.getpid()
frames = []
def read():  # as lambdad does while the handler runs
    stream = wire.FrameStream(theirs.fileno())
    while True:
        try:
            frames.append(stream.recv()[0])
        except EOFError:
            return
reader = threading.Thread(target=read)
reader.start()
sys.addaudithook(writes._audit)
d = sys.argv[1]
P = lambda name: os.path.join(d, name)
with open(P("src"), "w") as f:
    f.write("x")
writes._written = set()
"""

REPORT = """
writes._written = None
mine.close()
reader.join()
print(json.dumps([os.path.relpath(h["p"], d) if h["t"] == "wrote" else h["t"] for h in frames]))
"""


def reported(tmp_path: Path, body: str) -> list[str]:
    script = PRELUDE + textwrap.dedent(body) + REPORT
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(("body", "expected"), [
    ('open(P("a"), "w").close()', ["a"]),
    ('open(P("src"), "r").read()', []),
    ('open(P("src"), "r+").close()', ["src"]),
    ('os.close(os.open(P("c"), os.O_WRONLY | os.O_CREAT))', ["c"]),
    ('shutil.copy2(P("src"), P("e"))', ["e"]),
    ('os.rename(P("src"), P("f"))', ["f"]),
    ('os.replace(P("src"), P("f"))', ["f"]),
    ('shutil.move(P("src"), P("f"))', ["f"]),
    ('os.link(P("src"), P("g"))', ["g"]),
    ('os.symlink(P("src"), P("h"))', ["h"]),
    ('fd = os.open(d, os.O_RDONLY); os.rename("src", "k", src_dir_fd=fd, dst_dir_fd=fd)', ["k"]),
    ('fd = os.open(d, os.O_RDONLY); os.symlink("src", "m", dir_fd=fd)', ["m"]),
    ('import pathlib; pathlib.Path(P("n")).write_text("x")', ["n"]),
])
def test_each_way_of_writing_a_path_is_reported(tmp_path: Path, body: str, expected: list[str]):
    assert reported(tmp_path, body) == expected


def test_a_path_is_reported_once_so_a_busy_log_hides_no_later_write(tmp_path: Path):
    body = """
    for _ in range(1200):
        with open(P("log"), "a") as f:
            f.write("x")
    open(P("bucket-file"), "w").close()
    """
    assert reported(tmp_path, body) == ["log", "bucket-file"]


def test_writes_in_many_threads_are_each_reported_as_whole_frames(tmp_path: Path):
    body = """
    threads = [threading.Thread(target=lambda i=i: [open(P(f"t{i}-{j}"), "w").close() for j in range(20)])
               for i in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    """
    assert sorted(reported(tmp_path, body)) == sorted(f"t{i}-{j}" for i in range(20) for j in range(20))


def test_a_forked_process_reports_nothing(tmp_path: Path):
    body = """
    pid = os.fork()
    if pid == 0:
        open(P("child"), "w").close()
        os._exit(0)
    os.waitpid(pid, 0)
    open(P("parent"), "w").close()
    """
    assert reported(tmp_path, body) == ["parent"]


def test_reports_lambdad_does_not_read_are_dropped_and_the_handler_goes_on(tmp_path: Path):
    body = """
    stalled = socket.socketpair()  # nobody reads it
    writes._reports = stalled[0]
    for i in range(2000):
        open(P(f"f{i}"), "w").close()
    writes._reports = mine
    writes._written = set()
    open(P("later"), "w").close()
    """
    assert reported(tmp_path, body) == ["later"]


def test_past_the_cap_reports_are_dropped(tmp_path: Path):
    body = """
    for i in range(writes.MAX_WRITTEN + 5):
        open(P(f"f{i}"), "w").close()
    """
    assert len(reported(tmp_path, body)) == 1000
