"""Work handed to a thread pool whose failure is never lost.

A task's exception lands in its `Future`, which nobody reads: the event or batch it held would stay
leased, with no trace, until its lease ran out. `submit` reads every future: a task that raised is
logged with its traceback and the work it held is released (so it runs again); one the executor
refused (it is shutting down) or cancelled is released too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

log = logging.getLogger(__name__)


def submit(executor: Executor, task: Callable[..., Any], *args: Any, what: str,
           release: Callable[[], None]) -> bool:
    """Run `task(*args)` on `executor`; False when the executor refused it (already released).

    `release` is called at most once, and only when the task did not finish normally: it must put
    back what the task held (and should be idempotent against a task that got as far as settling).
    """
    try:
        future = executor.submit(task, *args)
    except RuntimeError:  # the executor is shut down: the task never runs
        _release(what, release)
        return False
    future.add_done_callback(lambda f: _check(f, what, release))
    return True


def _check(future: Future, what: str, release: Callable[[], None]) -> None:
    if future.cancelled():
        _release(what, release)
        return
    error = future.exception()
    if error is None:
        return
    log.error("%s is put back to run again: handling it failed", what, exc_info=error)
    _release(what, release)


def _release(what: str, release: Callable[[], None]) -> None:
    try:
        release()
    except Exception:  # the store itself fails: the lease runs out, then the work runs again
        log.exception("%s runs again when its lease runs out: putting it back failed", what)
