"""How a `logging` record reads on the daemon's console: pure and table-driven."""

from __future__ import annotations

import logging

import pytest

from lambdad.console import Console, ConsoleHandler, console_text
from tests.helpers import TextSink


def record(name: str, level: int, message: str, *args: object, error: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(error), error, error.__traceback__) if error is not None else None
    return logging.LogRecord(name, level, __file__, 1, message, args, exc_info)


def raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as e:
        return e


@pytest.mark.parametrize(
    ("name", "level", "message", "args", "shown"),
    [
        ("lambdad.triggers.schedules.service", logging.INFO, "schedule %s missed a run", ("sweep",), "schedule sweep missed a run"),
        ("lambdad", logging.INFO, "plain", (), "plain"),
        ("lambdad.api.lambda_api", logging.WARNING, "the API refused %s", ("POST /",), "warning: the API refused POST /"),
        ("lambdad.tasks", logging.ERROR, "a batch failed", (), "error: a batch failed"),
        ("lambdad.tasks", logging.CRITICAL, "gone", (), "error: gone"),
        ("uvicorn.error", logging.WARNING, "Invalid HTTP request received.", (),
         "warning: uvicorn: Invalid HTTP request received."),
        ("asyncio", logging.ERROR, "Task exception was never retrieved", (),
         "error: asyncio: Task exception was never retrieved"),
        ("lambdadx", logging.WARNING, "not ours", (), "warning: lambdadx: not ours"),
    ],
)
def test_a_record_is_one_line_in_the_console_s_form(name, level, message, args, shown):
    assert console_text(record(name, level, message, *args)) == shown


@pytest.mark.parametrize(
    ("error", "first"),
    [
        (RuntimeError("boom"), "error: the SQS poller failed unexpectedly (RuntimeError: boom)"),
        (KeyError("x"), "error: the SQS poller failed unexpectedly (KeyError: 'x')"),
        (AssertionError(), "error: the SQS poller failed unexpectedly (AssertionError)"),
    ],
)
def test_an_exception_is_one_line_then_its_traceback(error, first):
    lines = console_text(record("lambdad.health", logging.ERROR, "the SQS poller failed unexpectedly",
                                error=raised(error))).splitlines()
    assert lines[0] == first
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == first.split(" (", 1)[1].rstrip(")")  # Python's own last line
    assert all(line.startswith("  ") for line in lines[2:-1])


def test_the_handler_drops_third_party_info_whatever_the_levels():
    out = TextSink()
    handler = ConsoleHandler(Console(out))
    for r in (record("apscheduler.scheduler", logging.INFO, "Added job"), record("uvicorn.error", logging.DEBUG, "x"),
              record("lambdad.daemon", logging.INFO, "kept"), record("watchdog", logging.WARNING, "kept too")):
        handler.handle(r)
    assert out.text == "kept\nwarning: watchdog: kept too\n"


def test_a_record_that_does_not_format_is_reported_by_logging_not_raised(capsys: pytest.CaptureFixture[str]):
    out = TextSink()
    ConsoleHandler(Console(out)).handle(record("lambdad", logging.INFO, "%d things", "not a number"))
    assert out.text == ""
    assert "--- Logging error ---" in capsys.readouterr().err
