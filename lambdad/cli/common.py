"""What the commands share: finding the manifest and state folder, reading payloads, printing tables."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdad.errors import UsageError

if TYPE_CHECKING:
    from lambdad.manifest import Manifest
    from lambdad.services.state import StateServices
    from lambdad.statedir import StateDir

#: The state folder's default name, created beside the manifest.
STATE_DIR_NAME = ".lambdad"


def load(args: argparse.Namespace, running: bool = True) -> Manifest:
    """The manifest; with `running`, when a bad save is on disk while a daemon runs, the configuration
    the daemon kept running instead (with a warning), so that a typo does not lock the user out."""
    from lambdad.errors import ManifestError
    from lambdad.manifest import find_manifest, load_manifest, parse_manifest
    from lambdad.statedir import StateDir
    from lambdad.validation import register_feature_checks

    register_feature_checks()
    path = find_manifest(args.file)
    try:
        return load_manifest(path)
    except ManifestError:
        folder = Path(args.state_dir) if getattr(args, "state_dir", None) else path.parent / STATE_DIR_NAME
        state = StateDir(folder.absolute())
        info = state.read_info()
        runs = info.manifest if info is not None else None
        ours = running and runs is not None and Path(runs).resolve() == path.resolve()  # its file, not another
        text = state.read_running() if ours else None
        manifest = parse_manifest(text, path, None)[0] if text is not None else None
        if manifest is None:
            raise
        print(f"lambdad: warning: {shown(path)} has problems (`lambdad validate` lists them); using the "
              "configuration the running daemon runs", file=sys.stderr)
        return manifest


def state_dir(args: argparse.Namespace, manifest: Manifest) -> StateDir:
    from lambdad.statedir import StateDir

    path = Path(args.state_dir) if args.state_dir else manifest.folder / STATE_DIR_NAME
    return StateDir(path.absolute())


def open_services(args: argparse.Namespace, manifest: Manifest) -> StateServices:
    """The services over the state folder's store, for this command (a `with` block closes it)."""
    from lambdad.clock import SYSTEM_CLOCK
    from lambdad.services.state import open_state

    return open_state(state_dir(args, manifest), manifest, SYSTEM_CLOCK,
                      warn=lambda line: stderr(f"lambdad: warning: {line}"))


def read_payload(spec: str) -> bytes:
    """`--payload` as aws takes it: inline text, `file://PATH` (text) or `fileb://PATH` (bytes)."""
    for scheme in ("fileb://", "file://"):
        if spec.startswith(scheme):
            path = spec[len(scheme) :]
            try:
                return Path(path).expanduser().read_bytes()
            except OSError as e:
                raise UsageError(f"cannot read payload file {path!r}: {e.strerror}") from None
    return spec.encode()


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str = "(none)") -> None:
    if not rows:
        print(empty)
        return
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def local_time(ts: float) -> str:
    """An epoch time as the user's own clock shows it (`2026-01-31 12:00:00`): formatting only, no clock read."""
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def stderr(message: str) -> None:
    print(message, file=sys.stderr)
