"""Every feature's manifest checks, registered with the manifest layer: the one module that knows them all.

`lambdad.manifest` sits below the features and imports none of them; it runs the checks registered
with it. Each feature keeps the checks of its own rules beside it (`<feature>/checks.py`, a `CHECKS`
tuple and, where it has any, `WARNINGS`), and this module, above them all, registers them, in the order
they report. What loads a manifest to run it (`lambdad validate`, `up` and every other command, the
daemon's reload) calls `register_feature_checks()` first; a new feature's checks are one line below.
"""

from __future__ import annotations

from types import ModuleType

from lambdad.http import checks as http
from lambdad.manifest.checks import register
from lambdad.runtime import checks as runtime
from lambdad.triggers.buckets import checks as buckets
from lambdad.triggers.mappings import checks as sources
from lambdad.triggers.schedules import checks as schedules

#: The features whose checks validation runs, in order, after the manifest's own (names, references).
FEATURES: tuple[ModuleType, ...] = (runtime, buckets, schedules, http, sources)


def register_feature_checks() -> None:
    """Register every feature's checks (again: a check registered twice runs once)."""
    for feature in FEATURES:
        register(*feature.CHECKS)
        register(*getattr(feature, "WARNINGS", ()), warning=True)
