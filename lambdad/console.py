"""The daemon's console: the one place `lambdad up` prints, its own lines and `logging` records alike.

The daemon says what happens in plain lines (`ready in 80 ms`, `warning: ...`, `error: ...`) and a
function's output prefixed with its name. Python `logging` is routed here only while `lambdad up`
runs (`console_logging`), never at import, so other commands print what they printed before.
A record is one line in the console's own form (`warning: ` / `error: ` before the message, the
exception's type and text after it), then its traceback, written together so that lines from
other threads cannot come between them. lambdad's loggers speak from INFO up; third parties only
from WARNING (apscheduler's "Added job", uvicorn's "Started server" are not the user's business).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from collections.abc import Iterator
from typing import TextIO

#: Loggers of the libraries the daemon runs on, held to WARNING whatever the root logger's level.
THIRD_PARTIES = ("apscheduler", "uvicorn", "watchdog", "asyncio")


class Console:
    """Thread-safe line output, each function's lines prefixed with its name."""

    def __init__(self, out: TextIO) -> None:
        self._out: TextIO | None = out
        self._lock = threading.Lock()
        self.width = 8

    def say(self, text: str) -> None:
        with self._lock:
            if self._out is None:
                return
            try:
                self._out.write(text + "\n")
                self._out.flush()
            except (OSError, ValueError):  # the terminal went away: the daemon goes on, silently
                self._out = None

    def warn(self, message: str) -> None:
        """Something the user should know that does not stop anything (`warning: ...`)."""
        self.say(f"warning: {message}")

    def error(self, message: str) -> None:
        """Something that stops the daemon (`error: ...`)."""
        self.say(f"error: {message}")

    def function_line(self, function: str, message: str) -> None:
        # The runtime joins a traceback's lines with CR (as AWS does); a terminal needs real newlines.
        prefix = f"{function:>{self.width}} | "
        lines = message.split("\r")
        self.say("\n".join(prefix + line for line in lines))


def _is_lambdad(name: str) -> bool:
    return name == "lambdad" or name.startswith("lambdad.")


def console_text(record: logging.LogRecord) -> str:
    """What the console shows for a record: `error: invoking f for 1a2b failed (KeyError: 'x')` and
    the traceback below it. A third party's message names its library (`warning: uvicorn: ...`)."""
    message = record.getMessage()
    if not _is_lambdad(record.name):
        message = f"{record.name.partition('.')[0]}: {message}"
    if record.levelno >= logging.ERROR:
        message = f"error: {message}"
    elif record.levelno >= logging.WARNING:
        message = f"warning: {message}"
    error = record.exc_info[1] if record.exc_info else None
    if error is None:
        return message
    text = str(error)
    lines = [f"{message} ({type(error).__name__}{f': {text}' if text else ''})",
             "".join(traceback.format_exception(error)).rstrip("\n")]
    if record.stack_info:
        lines.append(record.stack_info)
    return "\n".join(lines)


class ConsoleHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def filter(self, record: logging.LogRecord) -> bool:
        """A third party below WARNING is dropped, even when a logger's level lets it through."""
        return (record.levelno >= logging.WARNING or _is_lambdad(record.name)) and super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.say(console_text(record))
        except Exception:  # (a message whose arguments do not format: logging's own report, on stderr)
            self.handleError(record)


@contextlib.contextmanager
def console_logging(console: Console) -> Iterator[ConsoleHandler]:
    """Route `logging` to `console` for the block: lambdad from INFO, third parties from WARNING.
    Levels and handlers are put back afterwards (the daemon runs in-process in tests)."""
    levels = {"lambdad": logging.INFO} | dict.fromkeys(THIRD_PARTIES, logging.WARNING)
    loggers = {name: logging.getLogger(name) for name in levels}
    before = {name: lg.level for name, lg in loggers.items()}
    handler = ConsoleHandler(console)
    for name, level in levels.items():
        loggers[name].setLevel(level)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in before.items():
            loggers[name].setLevel(level)
