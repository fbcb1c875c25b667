"""daemon.json as a record: what the daemon writes reads back the same, and a reader copes with
whatever shape it finds (a file written half, or by another version)."""

from __future__ import annotations

import pytest

from lambdad.health import Failure
from lambdad.statedir import DaemonInfo

FULL = DaemonInfo(
    pid=7, version="0.1.0", manifest="/p/lambdad.yaml", started=1_700_000_000.5, config="stale",
    api="http://127.0.0.1:9001", listeners={"web": "http://127.0.0.1:8080"}, urls={"f": None},
    config_errors=["lambdad.yaml:3:1: bad"], failing={"buckets": Failure("disk full", 1_700_000_001.0, 3)},
    sqs_mappings={"f/q": {"error": "batch of 1 failed", "at": 1_700_000_002.0}},
)


def test_a_record_reads_back_as_written():
    assert DaemonInfo.from_json(FULL.to_json()) == FULL


def test_the_document_keeps_the_keys_status_reads():
    assert FULL.to_json() == {
        "pid": 7, "version": "0.1.0", "manifest": "/p/lambdad.yaml", "started": 1_700_000_000.5, "config": "stale",
        "api": "http://127.0.0.1:9001", "listeners": {"web": "http://127.0.0.1:8080"}, "urls": {"f": None},
        "config_errors": ["lambdad.yaml:3:1: bad"],
        "failing": {"buckets": {"error": "disk full", "since": 1_700_000_001.0, "attempts": 3}},
        "sqs_mappings": {"f/q": {"error": "batch of 1 failed", "at": 1_700_000_002.0}},
    }


def test_problems_are_written_only_when_there_are_some():
    doc = DaemonInfo(pid=1, api="http://127.0.0.1:9001").to_json()
    assert doc == {"pid": 1, "config": "current", "api": "http://127.0.0.1:9001", "listeners": {}, "urls": {}}


@pytest.mark.parametrize("doc", [{}, {"pid": 3}, {"pid": 3, "failing": {"x": {}}, "listeners": None}])
def test_a_partial_document_takes_the_defaults(doc: dict):
    info = DaemonInfo.from_json(doc)
    assert info.pid == doc.get("pid") and info.config == "current" and info.listeners == {}
    assert all(f.attempts == 0 for f in info.failing.values())
