"""What the daemon writes about itself into daemon.json: a pure function of its current state."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from lambdad import __version__
from lambdad.daemon.serving import API, LISTENER
from lambdad.health import Failure
from lambdad.manifest.model import ApiTrigger, Manifest
from lambdad.statedir import DaemonInfo


def daemon_info(manifest: Manifest, started: float, config_errors: Sequence[str], addresses: Mapping[str, str],
                failures: Mapping[str, Failure], sqs_errors: Mapping[str, dict[str, Any]]) -> DaemonInfo:
    """`addresses`: where the API (`api`) and each listener (`listener:NAME`) listen. The state
    folder's own failures are left out: daemon.json is what could not be written then."""
    return DaemonInfo(
        pid=os.getpid(),
        version=__version__,
        manifest=str(manifest.file),
        started=started,
        config="stale" if config_errors else "current",
        api=addresses.get(API),
        listeners={k.removeprefix(LISTENER): v for k, v in addresses.items() if k != API},
        urls={fn.name: addresses.get(f"{LISTENER}{t.listener}")
              for fn in manifest.functions.values()
              for t in fn.events if isinstance(t, ApiTrigger) and t.function_url},
        config_errors=list(config_errors),
        failing={name: f for name, f in failures.items() if name != "state"},
        sqs_mappings=dict(sqs_errors),
    )
