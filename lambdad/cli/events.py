"""Commands that make sample events: `event list` and `event generate`. They need no manifest, so a
payload can be made anywhere and piped into `lambdad invoke FUNCTION --payload -`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from lambdad.cli.common import print_json, print_table
from lambdad.errors import EXIT_OK


def cmd_event_list(args: argparse.Namespace) -> int:
    from lambdad.payloads.samples import SAMPLES

    samples = [SAMPLES[name] for name in sorted(SAMPLES)]
    if args.json:
        print_json([{"name": s.name, "description": s.description,
                     "parameters": {k: {"default": p.default, "help": p.help} for k, p in s.params.items()}}
                    for s in samples])
        return EXIT_OK
    print_table(["NAME", "DESCRIPTION", "PARAMETERS"], [[s.name, s.description, ", ".join(s.params)] for s in samples])
    return EXIT_OK


def cmd_event_generate(args: argparse.Namespace) -> int:
    from lambdad.clock import SYSTEM_CLOCK
    from lambdad.payloads.samples import generate

    payload: dict[str, Any] = generate(args.source, args.set, SYSTEM_CLOCK.time())
    print(json.dumps(payload, indent=2, ensure_ascii=False))
    return EXIT_OK
