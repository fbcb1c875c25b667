"""A reload, before it is applied: the new manifest loaded, its change record made, or why not.

Whatever the file holds and whatever fails, the daemon goes on serving, so nothing here raises
into the loop: a manifest with problems, or a bug in loading one, comes back as the problems to
show (and the previous configuration runs on).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from lambdad.daemon.components import Change
from lambdad.errors import ManifestError
from lambdad.manifest import load_manifest
from lambdad.manifest.diff import manifest_diff, pin_restart_only
from lambdad.manifest.model import Manifest
from lambdad.triggers.buckets.sync import BucketSync, bucket_root
from lambdad.validation import register_feature_checks

log = logging.getLogger(__name__)


class Refused(Exception):
    """A reload that cannot be applied, found before anything changed."""


def load_new(file: Path, why: str) -> tuple[Manifest | None, list[str], list[str]]:
    """(the new manifest or None, its problems, the console lines saying so)."""
    try:
        register_feature_checks()
        return load_manifest(file), [], []
    except ManifestError as e:
        return None, e.problems, [f"reload ({why}): {len(e.problems)} problem(s); the previous configuration "
                                  "keeps running until the manifest is fixed:", *e.problems]
    except Exception as e:  # a bug in validation: the manifest is as good as invalid; say so
        log.exception("loading the manifest failed")
        problem = (f"{file.name}: the manifest could not be loaded ({type(e).__name__}: {e}); please report "
                   "this as a bug in lambdad")
        return None, [problem], [f"reload ({why}): {problem}; the previous configuration keeps running"]


def plan_change(old: Manifest, new: Manifest,
                make_sync: Callable[[str, Manifest], BucketSync]) -> tuple[Change, tuple[str, ...]]:
    """The change record of a reload, and the settings that only a restart applies. What can fail
    comes first (a bucket folder that cannot be created): Refused then, and nothing changed."""
    new, restart_only = pin_restart_only(old, new)
    diff = manifest_diff(old, new)
    syncs: dict[str, BucketSync] = {}
    for name in diff.buckets_added + diff.buckets_changed:
        try:
            bucket_root(new.buckets[name])
        except OSError as e:
            raise Refused(f"bucket {name}: cannot create {new.buckets[name].path}: {e.strerror}") from None
        syncs[name] = make_sync(name, new)
    return Change(new, diff, syncs), restart_only


def functions_of(manifest: Manifest, folders: Mapping[str, set[str]]) -> list[str]:
    """The functions whose code lives in one of the changed `folders` (real paths)."""
    return [fn.name for fn in manifest.functions.values() if os.path.realpath(fn.code) in folders]


def forget_bytecode(path: str) -> None:
    """Remove the cached bytecode of a changed module (or of every module in a folder that appeared).
    A .pyc records its source's mtime in whole seconds and its size, so a second save within the
    same second (same size) would otherwise run the first save's code."""
    sources = [Path(path)] if path.endswith(".py") else Path(path).rglob("*.py") if os.path.isdir(path) else []
    for source in sources:
        with contextlib.suppress(OSError, ValueError):
            os.unlink(importlib.util.cache_from_source(str(source)))
