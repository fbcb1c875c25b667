"""What the store keeps of the schedule rules, read for the commands (`lambdad schedules`). The
scheduler itself (APScheduler, in `triggers/schedules`) is not imported: listing fire times needs none."""

from __future__ import annotations

from collections.abc import Iterable

from lambdad.store import Store, rules


class RuleTimes:
    def __init__(self, store: Store) -> None:
        self.store = store

    def created_at(self, names: Iterable[str]) -> dict[str, float]:
        """When each rule was created as far as a running (or past) daemon knows: rates count from
        it. A rule no daemon has run yet is left out."""
        with self.store.reading() as tx:
            found = {name: rules.get(tx, name) for name in names}
        return {name: state.created_at for name, state in found.items() if state is not None}
