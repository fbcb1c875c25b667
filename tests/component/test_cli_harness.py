"""The in-process CLI harness itself: it reports what a shell would see, puts the process back as it
found it, and lets an unexpected exception through instead of turning it into an exit status."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

import lambdad.cli
from lambdad import __version__
from tests.component.cli import run_cli


def test_argparse_exits_become_the_status(tmp_path: Path):
    version = run_cli(["--version"], cwd=tmp_path)
    assert (version.code, version.out, version.err) == (0, f"lambdad {__version__}\n", "")
    unknown = run_cli(["no-such-command"], cwd=tmp_path)
    assert unknown.code == 2 and unknown.out == ""
    assert unknown.err.startswith("usage: lambdad") and "invalid choice: 'no-such-command'" in unknown.err


def test_the_working_folder_and_the_environment_are_put_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LAMBDAD_HARNESS_CHECK", "before")
    cwd, env = os.getcwd(), dict(os.environ)
    done = run_cli(["validate"], cwd=tmp_path, env={"PATH": os.environ.get("PATH", "")})
    assert done.code == 2 and "no manifest found" in done.err  # it ran in tmp_path, which has none
    assert (os.getcwd(), dict(os.environ)) == (cwd, env)


def test_an_unexpected_exception_is_not_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("a bug")

    def parser() -> argparse.ArgumentParser:
        built = argparse.ArgumentParser(prog="lambdad")
        built.set_defaults(command=broken)
        return built

    monkeypatch.setattr(lambdad.cli, "build_parser", parser)
    cwd = os.getcwd()
    with pytest.raises(RuntimeError, match="a bug"):
        run_cli([], cwd=tmp_path)
    assert os.getcwd() == cwd
