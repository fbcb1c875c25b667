"""The manifest's rules that come from the Lambda runtime: the handler's module is there, the
environment variables are the function's to set, reserved concurrency leaves some for the others."""

from __future__ import annotations

from collections.abc import Iterator

from lambdad.manifest import model as m
from lambdad.manifest.checks import Check, Finding
from lambdad.runtime.code import handler_module_file
from lambdad.runtime.environment import RESERVED_ENV

#: Lambda's limit on the total size of a function's environment variables.
MAX_ENV_BYTES = 4096


def check_code(man: m.Manifest) -> Iterator[Finding]:
    for fn in man.functions.values():
        if not fn.code.is_dir():
            yield Finding((*fn.where, "code"), f"code folder {str(fn.code)!r} does not exist")
        elif handler_module_file(fn.code, fn.handler) is None:
            module = fn.handler.rsplit(".", 1)[0]
            yield Finding(
                (*fn.where, "handler"),
                f"module {module!r} not found in {str(fn.code)!r} (looked for {module.replace('.', '/')}.py)",
            )


def check_environment(man: m.Manifest) -> Iterator[Finding]:
    for fn in man.functions.values():
        where = (*fn.where, "environment")
        for key in fn.environment:
            if key in RESERVED_ENV:
                yield Finding((*where, key), f"{key} is reserved by the Lambda runtime and cannot be set", True)
        size = sum(len(k.encode()) + len(v.encode()) for k, v in fn.environment.items())
        if size > MAX_ENV_BYTES:
            yield Finding(where, f"environment variables take {size} bytes; Lambda allows {MAX_ENV_BYTES}")


def check_concurrency(man: m.Manifest) -> Iterator[Finding]:
    """Reserved concurrency comes out of the shared pool (as from AWS's account limit); leave some."""
    reserved = [fn for fn in man.functions.values() if fn.reserved_concurrency]
    unreserved = [fn for fn in man.functions.values() if fn.reserved_concurrency is None]
    total = sum(fn.reserved_concurrency or 0 for fn in reserved)
    if unreserved and reserved and man.concurrency - total < 1:
        where = (*reserved[-1].where, "reserved_concurrency")
        yield Finding(where, f"reserved_concurrency adds up to {total} of concurrency {man.concurrency}: leave at "
                             f"least 1 for the {len(unreserved)} function(s) without a reservation")


CHECKS: tuple[Check, ...] = (check_code, check_environment, check_concurrency)
