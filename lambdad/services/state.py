"""A state folder's services for a caller that comes and goes (a command): the store opened once,
its damaged files set aside first when no daemon runs on the folder, and each domain's service over
it, built when first asked for, so a command imports only the domains it uses.

A running daemon is not woken by what a command commits: its pollers and dispatcher look at the
store again within a quarter of a second.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING

from lambdad.clock import SYSTEM_CLOCK, Clock
from lambdad.manifest.model import Manifest
from lambdad.statedir import StateDir
from lambdad.store import Durability, Store
from lambdad.store.db import STORE_FILE
from lambdad.store.salvage import set_aside_damage

if TYPE_CHECKING:
    from lambdad.services.asyncinvoke import AsyncInvocations
    from lambdad.services.queues import Queues
    from lambdad.services.schedules import RuleTimes
    from lambdad.services.streams import Streams


def open_state(state: StateDir, manifest: Manifest, clock: Clock = SYSTEM_CLOCK,
               warn: Callable[[str], None] = lambda line: None) -> StateServices:
    """The services over `state`'s store. Damaged store files are set aside (and `warn` told) only
    while no daemon holds the folder: a running daemon checked them at its start, and they are its own."""
    with state.unclaimed() as ours:  # (held meanwhile: a daemon cannot start and open them)
        for line in set_aside_damage(state.path / STORE_FILE, clock.time()) if ours else ():
            warn(line)
    return StateServices(Store.in_state_folder(state.path, Durability(manifest.durability)), clock, manifest)


class StateServices:
    """Each domain's service over one open store; `close` (or the `with` block's end) closes the store."""

    def __init__(self, store: Store, clock: Clock, manifest: Manifest) -> None:
        self.store = store
        self.clock = clock
        self.manifest = manifest

    @cached_property
    def invocations(self) -> AsyncInvocations:
        from lambdad.services.asyncinvoke import AsyncInvocations

        return AsyncInvocations(self.store, self.clock, self.manifest)

    @cached_property
    def queues(self) -> Queues:
        from lambdad.services.queues import Queues

        return Queues(self.store, self.clock, self.manifest)

    @cached_property
    def streams(self) -> Streams:
        from lambdad.services.streams import Streams

        return Streams(self.store, self.clock)

    @cached_property
    def schedules(self) -> RuleTimes:
        from lambdad.services.schedules import RuleTimes

        return RuleTimes(self.store)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> StateServices:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
