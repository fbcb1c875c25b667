"""Commands that run things: validate, up, invoke, logs."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

from lambdad.cli.common import load, open_services, plural, read_payload, shown, state_dir
from lambdad.errors import EXIT_OK, EXIT_USAGE, FunctionNotFound, LambdadError, TooManyRequests, UsageError


def cmd_validate(args: argparse.Namespace) -> int:
    manifest = load(args, running=False)
    triggers = sum(len(fn.events) for fn in manifest.functions.values())
    print(f"{shown(manifest.file)}: ok ({plural(len(manifest.functions), 'function')}, "
          f"{plural(triggers, 'trigger')})")
    for warning in manifest.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def cmd_up(args: argparse.Namespace) -> int:
    from lambdad.daemon import Daemon
    from lambdad.durations import parse_duration

    try:
        grace_s = parse_duration(args.grace)
    except ValueError as e:
        raise UsageError(f"--grace: {e}") from None
    manifest = load(args, running=False)
    return Daemon(manifest, state_dir(args, manifest), grace_s=grace_s, started_at=args.started_mono,
                  expose=args.expose, allow_hosts=tuple(args.allow_host)).run()


def cmd_invoke(args: argparse.Namespace) -> int:
    from lambdad.runtime.functions import check_payload

    manifest = load(args)
    payload = sys.stdin.buffer.read() if args.payload == "-" else read_payload(args.payload)
    if args.function not in manifest.functions:
        raise FunctionNotFound(args.function, list(manifest.functions))
    daemon = state_dir(args, manifest).running_daemon()
    api = daemon.api if daemon is not None else None
    if api:
        return _invoke_through(api, args, payload)
    if args.invocation_type == "Event":
        return _invoke_event(args, manifest, payload)
    payload = check_payload(payload)
    if args.invocation_type == "DryRun":
        _print_status({"StatusCode": 204}, to_stderr=False)
        return EXIT_OK
    result = _invoke_here(args, manifest, payload, _decode_client_context(args.client_context))
    status: dict[str, object] = {"StatusCode": 200}
    if result.function_error:
        status["FunctionError"] = result.function_error
    if args.log_type == "Tail":
        status["LogResult"] = base64.b64encode(result.log_tail).decode()
    status["ExecutedVersion"] = "$LATEST"
    if args.outfile and args.outfile != "-":
        _write_outfile(args.outfile, result.payload)
        _print_status(status, to_stderr=False)
    else:
        sys.stdout.buffer.write(result.payload + b"\n")
        sys.stdout.flush()
        _print_status(status, to_stderr=True)
    return EXIT_OK


def _invoke_through(api: str, args: argparse.Namespace, payload: bytes) -> int:
    """The running daemon's Invoke API does the call: its warm environments, its queue."""
    import http.client
    from urllib.parse import quote, urlsplit

    _decode_client_context(args.client_context)  # a bad one is a usage error here too
    headers = {"X-Amz-Invocation-Type": args.invocation_type}
    if args.log_type == "Tail":
        headers["X-Amz-Log-Type"] = "Tail"
    if args.client_context:
        headers["X-Amz-Client-Context"] = args.client_context
    where = urlsplit(api)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=None)
    try:
        conn.request("POST", f"/2015-03-31/functions/{quote(args.function, safe='')}/invocations", payload, headers)
        response = conn.getresponse()
        body = response.read()
    except OSError as e:
        raise LambdadError(f"cannot reach the running daemon's API at {api}: {e}") from None
    finally:
        conn.close()
    if response.status >= 300:
        raise _api_error(response.status, response.getheader("x-amzn-ErrorType", ""), body)
    status: dict[str, object] = {"StatusCode": response.status}
    if response.getheader("X-Amz-Function-Error"):
        status["FunctionError"] = response.getheader("X-Amz-Function-Error")
    if response.getheader("X-Amz-Log-Result"):
        status["LogResult"] = response.getheader("X-Amz-Log-Result")
    if response.getheader("X-Amz-Executed-Version"):
        status["ExecutedVersion"] = response.getheader("X-Amz-Executed-Version")
    if response.status != 200:
        if args.outfile and args.outfile != "-":
            _write_outfile(args.outfile, b"")
        _print_status(status, to_stderr=False)
    elif args.outfile and args.outfile != "-":
        _write_outfile(args.outfile, body)
        _print_status(status, to_stderr=False)
    else:
        sys.stdout.buffer.write(body + b"\n")
        sys.stdout.flush()
        _print_status(status, to_stderr=True)
    return EXIT_OK


def _api_error(status: int, code: str, body: bytes) -> LambdadError:
    try:
        doc = json.loads(body)
        message = doc.get("Message") or doc.get("message") or ""
    except ValueError:
        message = body.decode(errors="replace")
    error = LambdadError(f"{code or status}: {message}")
    if 400 <= status < 500 and status != 429:
        error.EXIT = EXIT_USAGE
    return error


def _invoke_here(args, manifest, payload: bytes, client_context: str | None):
    """Run the function in this process's own environment (like `sam local invoke`)."""
    from lambdad.logs import LogBook
    from lambdad.runtime.functions import Functions

    state = state_dir(args, manifest)
    state.create()
    functions = Functions(manifest, LogBook(state.logs))
    try:
        return functions.invoke(args.function, payload, client_context=client_context)
    except TooManyRequests as e:
        raise LambdadError(e.describe()) from None
    finally:
        functions.close()


def _invoke_event(args: argparse.Namespace, manifest, payload: bytes) -> int:
    """Queue the event durably; a running daemon picks it up at once, otherwise the next `lambdad up` does."""
    with open_services(args, manifest) as services:
        services.invocations.enqueue(args.function, payload)
    if args.outfile and args.outfile != "-":
        _write_outfile(args.outfile, b"")
    _print_status({"StatusCode": 202}, to_stderr=False)
    return EXIT_OK


def _write_outfile(path: str, payload: bytes) -> None:
    try:
        Path(path).write_bytes(payload)
    except OSError as e:
        raise UsageError(f"cannot write {path!r}: {e.strerror}") from None


def _decode_client_context(text: str | None) -> str | None:
    from lambdad.runtime.invocation import decode_client_context

    try:
        return decode_client_context(text)
    except UsageError as e:
        raise UsageError(f"--client-context: {e}") from None


def _print_status(status: dict[str, object], to_stderr: bool) -> None:
    print(json.dumps(status, indent=4), file=sys.stderr if to_stderr else sys.stdout)


def cmd_logs(args: argparse.Namespace) -> int:
    from lambdad.clock import SYSTEM_CLOCK
    from lambdad.durations import parse_duration
    from lambdad.logs import follow_records, format_record, log_files, read_records

    manifest = load(args)
    if args.function not in manifest.functions:
        raise FunctionNotFound(args.function, list(manifest.functions))
    folder = state_dir(args, manifest).logs
    since = None
    if args.since:
        try:
            since = SYSTEM_CLOCK.time() - parse_duration(args.since)
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
