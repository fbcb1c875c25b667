"""The `lambdad` command in-process: `lambdad.cli.main(argv)` with its own stdin, stdout, stderr,
working folder and environment, so a CLI test costs a function call instead of an interpreter start.

Only what main itself turns into an exit status comes back as a `Result`: an exception main lets
out (the traceback a user would see) propagates and fails the test, as it should.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lambdad.cli import main


@dataclass(frozen=True)
class Result:
    """One run of the command: its exit status and what it printed."""

    code: int
    out: str
    err: str


def run_cli(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None,
            stdin: str | bytes = b"") -> Result:
    """Run `lambdad ARGV...` in `cwd`, with `env` as the whole environment if given; both are put
    back afterwards, whatever the command changed."""
    out, err = _capture(), _capture()
    data = stdin.encode() if isinstance(stdin, str) else stdin
    with _isolated(cwd, env), _streams(_reader(data), out, err):
        try:
            code = main(list(argv))
        except SystemExit as e:  # argparse's usage errors, --help and --version
            code = _exit_status(e.code, err)
    return Result(code, _text(out), _text(err))


def cli_json(cwd: Path, *args: str):
    """`lambdad ARGS... --json` in `cwd`, parsed: for the tests that read what a command answers, the
    command having succeeded (its stderr is the failure's message)."""
    done = run_cli([*args, "--json"], cwd=cwd)
    assert done.code == 0, done.err
    return json.loads(done.out)


def _exit_status(code: object, err: io.TextIOWrapper) -> int:
    """What the interpreter would exit with for `sys.exit(code)`."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=err)
    return 1


def _capture() -> io.TextIOWrapper:
    """A text stream with a `.buffer`, as sys.stdout has (the response of `invoke` is written as bytes)."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)


def _reader(data: bytes) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode("utf-8", errors="replace")


@contextmanager
def _streams(stdin: io.TextIOWrapper, stdout: io.TextIOWrapper, stderr: io.TextIOWrapper) -> Iterator[None]:
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
    try:
        yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved


@contextmanager
def _isolated(cwd: Path, env: Mapping[str, str] | None) -> Iterator[None]:
    saved_cwd, saved_env = os.getcwd(), dict(os.environ)
    os.chdir(cwd)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
