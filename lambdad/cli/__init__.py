"""The `lambdad` command. `main` is the one entry point; each subcommand is a small `cmd_*` function.

A user error (bad manifest, unknown function, bad payload) prints one clear line per problem to
stderr and exits 2 without a traceback; an unexpected error prints the traceback and exits 1.
Heavy modules are imported inside the commands that need them, so `lambdad --help` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from lambdad import __version__
from lambdad.cli import deadletters, events, queues, run, schedules, status, streams
from lambdad.clock import SYSTEM_CLOCK
from lambdad.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE, LambdadError

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    started_mono = SYSTEM_CLOCK.monotonic()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    args.started_mono = started_mono
    try:
        return int(args.command(args))
    except LambdadError as e:
        for line in str(e).splitlines() or [type(e).__name__]:
            print(line if _is_located(line) else f"lambdad: {line}", file=sys.stderr)
        return e.EXIT
    except BrokenPipeError:  # the reader went away (`lambdad event generate ... | head`): nothing more to say
        _silence_stdout()
        return EXIT_OK
    except OSError as e:  # the machine said no (a folder that cannot be created, a full disk): say what
        where = f": {e.filename}" if e.filename else ""
        print(f"lambdad: {e.strerror or e}{where}", file=sys.stderr)
        return EXIT_ERROR
    except sqlite3.Error as e:
        print(f"lambdad: the store could not be used: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail on the closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


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
    manifest_opts.add_argument("-f", "--file", help="manifest (default: ./lambdad.yaml, else ./config/lambdad.yaml)")
    state_opts = argparse.ArgumentParser(add_help=False)
    state_opts.add_argument("--state-dir", help="state folder (default: .lambdad/ beside the manifest)")
    json_opts = argparse.ArgumentParser(add_help=False)
    json_opts.add_argument("--json", action="store_true", help="print JSON instead of a table")
    common = [manifest_opts, state_opts]

    p = sub.add_parser("validate", parents=[manifest_opts], help="check the manifest and report every problem")
    p.set_defaults(command=run.cmd_validate)

    p = sub.add_parser("up", parents=common, help="run the daemon in the foreground")
    p.add_argument("--grace", default="10s", help="time running invocations get to finish on Ctrl-C (default 10s)")
    p.add_argument("--expose", action="store_true",
                   help="allow the API and listeners to listen on addresses other than loopback")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a host name the API also answers for, besides localhost, *.localhost and IP addresses "
                        "(e.g. this machine's name, with --expose); *.NAME for every subdomain; repeatable")
    p.set_defaults(command=run.cmd_up)

    p = sub.add_parser("invoke", parents=common, help="invoke a function (like aws lambda invoke)")
    p.add_argument("function", metavar="FUNCTION")
    p.add_argument("outfile", metavar="OUTFILE", nargs="?", help="where the response goes (default: stdout)")
    p.add_argument("--payload", default="", help="JSON text, file://PATH, fileb://PATH, or - to read stdin")
    p.add_argument("--invocation-type", default="RequestResponse", choices=["RequestResponse", "Event", "DryRun"])
    p.add_argument("--log-type", default="None", choices=["None", "Tail"])
    p.add_argument("--client-context", help="base64 of a JSON object, as aws lambda invoke takes it")
    p.set_defaults(command=run.cmd_invoke)

    p = sub.add_parser("logs", parents=common, help="show a function's log")
    p.add_argument("function", metavar="FUNCTION")
    p.add_argument("--since", help="only records newer than this (e.g. 10m, 2h)")
    p.add_argument("--follow", action="store_true", help="keep printing new records")
    p.set_defaults(command=run.cmd_logs)

    p = sub.add_parser("status", parents=[*common, json_opts], help="daemon, async queue and outcome counts")
    p.set_defaults(command=status.cmd_status)

    dlq = sub.add_parser("dlq", help="events that failed for good").add_subparsers(metavar="ACTION", required=True)
    p = dlq.add_parser("list", parents=[*common, json_opts],
                       help="list dead letters: async invocations that failed for good")
    p.add_argument("--function")
    p.add_argument("--queue", help="only those whose dead letter was sent to this local queue (and the depth of "
                                   "the queue's own redrive dead-letter queue)")
    p.set_defaults(command=deadletters.cmd_dlq_list)
    p = dlq.add_parser("show", parents=[*common, json_opts], help="one dead letter: payload, attempts, last error")
    p.add_argument("id", type=int, metavar="ID")
    p.set_defaults(command=deadletters.cmd_dlq_show)
    p = dlq.add_parser("redrive", parents=common, help="queue dead letters again, with fresh attempts and new ids")
    p.add_argument("ids", type=int, nargs="*", metavar="ID")
    p.add_argument("--all", action="store_true")
    p.add_argument("--function", help="with --all: only this function's")
    p.set_defaults(command=deadletters.cmd_dlq_redrive)
    p = dlq.add_parser("purge", parents=common, help="forget dead letters")
    p.add_argument("--function")
    p.set_defaults(command=deadletters.cmd_dlq_purge)

    queue = sub.add_parser("queue", help="send to and look into local queues")
    queue = queue.add_subparsers(metavar="ACTION", required=True)
    p = queue.add_parser("list", parents=[*common, json_opts], help="queues and their depth")
    p.set_defaults(command=queues.cmd_queue_list)
    p = queue.add_parser("receive", parents=[*common, json_opts], help="receive messages, as SQS ReceiveMessage")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--max", type=int, default=1, help="1..10 messages (default 1)")
    p.set_defaults(command=queues.cmd_queue_receive)
    p = queue.add_parser("send", parents=[*common, json_opts], help="send a message, as SQS SendMessage")
    p.add_argument("name")
    p.add_argument("body", help="the message body (text), or file://PATH")
    p.add_argument("--group", help="MessageGroupId (FIFO queues)")
    p.add_argument("--dedup-id", help="MessageDeduplicationId (FIFO queues)")
    p.add_argument("--delay", help="DelaySeconds, as a duration (standard queues)")
    p.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE", help="a String message attribute")
    p.set_defaults(command=queues.cmd_queue_send)
    p = queue.add_parser("purge", parents=common, help="delete every message of a queue")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(command=queues.cmd_queue_purge)

    stream = sub.add_parser("stream", help="put records into local streams")
    stream = stream.add_subparsers(metavar="ACTION", required=True)
    p = stream.add_parser("put", parents=[*common, json_opts], help="put a record, as Kinesis PutRecord")
    p.add_argument("name")
    p.add_argument("data", nargs="?", help="the record's data (text)")
    p.add_argument("--partition-key", help="picks the shard (default: the data itself)")
    p.add_argument("--data-file", help="read the data from this file (bytes; -f names the manifest)")
    p.add_argument("--change", metavar="FILE", help="a DynamoDB change (JSON: eventName, Keys, NewImage, OldImage) "
                   "for a dynamodb stream")
    p.set_defaults(command=streams.cmd_stream_put)
    event = sub.add_parser("event", help="sample events of AWS sources, to edit and invoke with")
    event = event.add_subparsers(metavar="ACTION", required=True)
    p = event.add_parser("list", parents=[json_opts], help="the sources and their parameters")
    p.set_defaults(command=events.cmd_event_list)
    p = event.add_parser("generate", help="print a source's sample event (JSON)",
                         description="Print a sample event. --set NAME=VALUE sets a parameter of the source "
                         "(see `lambdad event list`), or else a dotted path into the payload "
                         "(Records.0.s3.object.size=10), VALUE read as JSON when it is JSON.")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter, or a dotted path into the payload (repeatable)")
    p.set_defaults(command=events.cmd_event_generate)

    p = sub.add_parser("schedules", parents=[manifest_opts, state_opts, json_opts],
                       help="every schedule rule and its next fire times")
    p.add_argument("--next", type=int, default=5, help="how many fire times (default 5)")
    p.add_argument("--from", dest="from_time", help="list fire times after this ISO-8601 time instead of now")
    p.set_defaults(command=schedules.cmd_schedules)

    p = sub.add_parser("fire", parents=common, help="fire a schedule rule now (its event's time is now)")
    p.add_argument("rule", metavar="RULE")
    p.set_defaults(command=schedules.cmd_fire)
    return parser
