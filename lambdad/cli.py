"""The `lambdad` command. `main` is the one entry point; each subcommand is a small `cmd_*` function.

A user error (bad manifest, unknown function, bad payload) prints one clear line per problem to
stderr and exits 2 without a traceback; an unexpected error prints the traceback and exits 1.
Heavy modules are imported inside the commands that need them, so `lambdad --help` stays fast.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lambdad import __version__
from lambdad.errors import EXIT_OK, EXIT_USAGE, LambdadError, UsageError

if TYPE_CHECKING:
    from lambdad.manifest import Manifest
    from lambdad.statedir import StateDir

#: The state folder's default name, created beside the manifest.
STATE_DIR_NAME = ".lambdad"


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    args.started = started
    try:
        return int(args.command(args))
    except LambdadError as e:
        for line in str(e).splitlines() or [type(e).__name__]:
            print(f"lambdad: {line}" if not _is_located(line) else line, file=sys.stderr)
        return e.EXIT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


def _is_located(line: str) -> bool:
    """A `FILE:LINE:COL: ...` problem line is printed as is, so editors can jump to it."""
    head = line.split(": ", 1)[0]
    return head.count(":") >= 2 and head.rsplit(":", 2)[-1].isdigit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lambdad", description="Run AWS-Lambda-style functions locally from a YAML manifest."
    )
    parser.add_argument("--version", action="version", version=f"lambdad {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")

    manifest_opts = argparse.ArgumentParser(add_help=False)
    manifest_opts.add_argument(
        "-f", "--file", help="manifest (default: ./lambdad.yaml, else ./config/lambdad.yaml)"
    )
    state_opts = argparse.ArgumentParser(add_help=False)
    state_opts.add_argument("--state-dir", help=f"state folder (default: {STATE_DIR_NAME}/ beside the manifest)")

    p = sub.add_parser("validate", parents=[manifest_opts], help="check the manifest and report every problem")
    p.set_defaults(command=cmd_validate)

    p = sub.add_parser("up", parents=[manifest_opts, state_opts], help="run the daemon in the foreground")
    p.add_argument("--grace", default="10s", help="time running invocations get to finish on Ctrl-C (default 10s)")
    p.set_defaults(command=cmd_up)

    p = sub.add_parser("invoke", parents=[manifest_opts, state_opts], help="invoke a function (like aws lambda invoke)")
    p.add_argument("function", metavar="FUNCTION")
    p.add_argument("outfile", metavar="OUTFILE", nargs="?", help="where the response goes (default: stdout)")
    p.add_argument("--payload", default="", help="JSON text, file://PATH or fileb://PATH")
    p.add_argument("--invocation-type", default="RequestResponse", choices=["RequestResponse", "DryRun"])
    p.add_argument("--log-type", default="None", choices=["None", "Tail"])
    p.add_argument("--client-context", help="base64 of a JSON object, as aws lambda invoke takes it")
    p.set_defaults(command=cmd_invoke)

    p = sub.add_parser("logs", parents=[manifest_opts, state_opts], help="show a function's log")
    p.add_argument("function", metavar="FUNCTION")
    p.add_argument("--since", help="only records newer than this (e.g. 10m, 2h)")
    p.add_argument("--follow", action="store_true", help="keep printing new records")
    p.set_defaults(command=cmd_logs)
    return parser


# -- shared helpers -----------------------------------------------------------------------------------


def load(args: argparse.Namespace) -> Manifest:
    from lambdad.manifest import find_manifest, load_manifest

    return load_manifest(find_manifest(args.file))


def state_dir(args: argparse.Namespace, manifest: Manifest) -> StateDir:
    from lambdad.statedir import StateDir

    path = Path(args.state_dir) if args.state_dir else manifest.folder / STATE_DIR_NAME
    return StateDir(path.absolute())


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


# -- commands -----------------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    manifest = load(args)
    triggers = sum(len(fn.events) for fn in manifest.functions.values())
    print(f"{_shown(manifest.file)}: ok ({len(manifest.functions)} functions, {triggers} triggers)")
    return EXIT_OK


def cmd_up(args: argparse.Namespace) -> int:
    from lambdad.daemon import Daemon
    from lambdad.durations import parse_duration

    try:
        grace_s = parse_duration(args.grace)
    except ValueError as e:
        raise UsageError(f"--grace: {e}") from None
    manifest = load(args)
    return Daemon(manifest, state_dir(args, manifest), grace_s=grace_s, started_at=args.started).run()


def cmd_invoke(args: argparse.Namespace) -> int:
    from lambdad.logs import LogBook
    from lambdad.runtime.functions import Functions, check_payload

    manifest = load(args)
    payload = read_payload(args.payload)
    if args.function not in manifest.functions:
        from lambdad.errors import FunctionNotFound

        raise FunctionNotFound(args.function, list(manifest.functions))
    payload = check_payload(payload)
    if args.invocation_type == "DryRun":
        _print_status({"StatusCode": 204}, to_stderr=False)
        return EXIT_OK
    client_context = _decode_client_context(args.client_context)
    state = state_dir(args, manifest)
    state.create()
    functions = Functions(manifest, LogBook(state.logs))
    try:
        result = functions.invoke(args.function, payload, client_context=client_context)
    finally:
        functions.close()
    status: dict[str, object] = {"StatusCode": 200}
    if result.function_error:
        status["FunctionError"] = result.function_error
    if args.log_type == "Tail":
        status["LogResult"] = base64.b64encode(result.log_tail).decode()
    status["ExecutedVersion"] = "$LATEST"
    if args.outfile and args.outfile != "-":
        Path(args.outfile).write_bytes(result.payload)
        _print_status(status, to_stderr=False)
    else:
        sys.stdout.buffer.write(result.payload + b"\n")
        sys.stdout.flush()
        _print_status(status, to_stderr=True)
    return EXIT_OK


def _decode_client_context(text: str | None) -> str | None:
    if not text:
        return None
    try:
        decoded = base64.b64decode(text, validate=True).decode()
        json.loads(decoded)
    except (ValueError, UnicodeDecodeError):
        raise UsageError("--client-context must be base64 of a JSON object") from None
    return decoded


def _print_status(status: dict[str, object], to_stderr: bool) -> None:
    print(json.dumps(status, indent=4), file=sys.stderr if to_stderr else sys.stdout)


def cmd_logs(args: argparse.Namespace) -> int:
    from lambdad.durations import parse_duration
    from lambdad.errors import FunctionNotFound
    from lambdad.logs import follow_records, format_record, log_files, read_records

    manifest = load(args)
    if args.function not in manifest.functions:
        raise FunctionNotFound(args.function, list(manifest.functions))
    folder = state_dir(args, manifest).logs
    since = None
    if args.since:
        try:
            since = time.time() - parse_duration(args.since)
        except ValueError as e:
            raise UsageError(f"--since: {e}") from None
    path = folder / f"{args.function}.log"
    end = path.stat().st_size if path.exists() else 0  # what is printed now; --follow goes on from here
    for record in read_records(folder, args.function, since, upto=end):
        print(format_record(record))
    if args.follow:
        sys.stdout.flush()
        for record in follow_records(path, offset=end):
            print(format_record(record), flush=True)
    elif not log_files(folder, args.function):
        print(f"lambdad: no log yet for {args.function!r} in {folder}", file=sys.stderr)
    return EXIT_OK


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
