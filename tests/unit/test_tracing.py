"""X-Ray trace headers: parsing what clients and SDKs send, the header of an invocation, Lineage counts."""

from __future__ import annotations

import itertools

import pytest

from lambdad import tracing
from lambdad.tracing import TraceHeader, chain_count, for_invocation, format_header, is_recursive_loop, parse

ROOT = "1-5759e988-bd862e3fe1be46a994272793"


def counting_random():
    """Bytes 00, 01, 02 ... so that ids are predictable."""
    counter = itertools.count()
    return lambda n: bytes(next(counter) % 256 for _ in range(n))


@pytest.mark.parametrize(("text", "expected"), [
    (f"Root={ROOT}", TraceHeader(ROOT)),
    (f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1", TraceHeader(ROOT, "53995c3f42cd8ad8", "1")),
    (f"Root={ROOT.upper()}; Sampled=0", TraceHeader(ROOT, None, "0")),
    (f"Self=1-67891234-12456789abcdef012345678;Root={ROOT}", TraceHeader(ROOT, extra=(("Self",
                                                                                         "1-67891234-12456789abcdef012345678"),))),
    (f"Root={ROOT};Sampled=1;Lineage=a87bd80c:1|68fd508a:5|c512fbe3:2",
     TraceHeader(ROOT, None, "1", (("a87bd80c", 1), ("68fd508a", 5), ("c512fbe3", 2)))),
    (f"Root={ROOT};Lineage=1:fe460cdd:0", TraceHeader(ROOT, lineage=(("fe460cdd", 0),))),
    (f"Root={ROOT};Lineage=junk|1:fe460cdd:x|2:abcdef01:3", TraceHeader(ROOT, lineage=(("abcdef01", 3),))),
    (f"Root={ROOT};Parent=short", TraceHeader(ROOT)),
    (f"Root={ROOT};Lineage=1:a87bd80c:1%7C1:68fd508a:5",  # as botocore quotes it
     TraceHeader(ROOT, lineage=(("a87bd80c", 1), ("68fd508a", 5)))),
])
def test_parse(text: str, expected: TraceHeader):
    assert parse(text) == expected


@pytest.mark.parametrize("text", [None, "", "Root=", "Root=1-xyz-abc", "Parent=53995c3f42cd8ad8", "garbage",
                                  "Root=2-5759e988-bd862e3fe1be46a994272793"])
def test_a_header_without_a_valid_root_is_none(text):
    assert parse(text) is None


def test_format_writes_lineage_with_its_version():
    header = TraceHeader(ROOT, "53995c3f42cd8ad8", "0", (("a87bd80c", 2),))
    assert format_header(header) == f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=0;Lineage=1:a87bd80c:2"
    assert parse(format_header(header)) == header


def test_new_root_has_the_epoch_in_hex_and_96_random_bits():
    assert tracing.new_root(1_700_000_000.9, counting_random()) == "1-6553f100-000102030405060708090a0b"
    assert tracing.root_header(0, lambda n: b"\xff" * n) == "Root=1-00000000-" + "f" * 24


def test_an_invocation_without_a_caller_starts_a_trace():
    trace = for_invocation(None, "resize", 1_700_000_000, counting_random())
    assert trace == (f"Root=1-6553f100-000102030405060708090a0b;Parent=0c0d0e0f10111213;Sampled=0;"
                     f"Lineage=1:{tracing.function_hash('resize')}:0")


def test_an_invocation_keeps_the_callers_trace_id_and_sampling_with_a_parent_of_its_own():
    trace = parse(for_invocation(f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1;Self=x", "resize", 0))
    assert (trace.root, trace.sampled, trace.extra) == (ROOT, "1", (("Self", "x"),))
    assert trace.parent not in (None, "53995c3f42cd8ad8")


def test_lineage_counts_each_functions_invocations_in_the_chain():
    trace = None
    for expected in range(20):
        trace = for_invocation(trace, "loop", 0)
        assert chain_count(trace, "loop") == expected
        assert is_recursive_loop(trace, "loop") == (expected >= 16)  # the 17th invocation is stopped
    other = for_invocation(trace, "other", 0)
    assert (chain_count(other, "other"), chain_count(other, "loop")) == (0, 19)
    assert tracing.root_of(other) == tracing.root_of(trace)


LOOP = tracing.function_hash("f")


@pytest.mark.parametrize(("traces", "count"), [
    ([None], 0),  # a message nobody traced starts a chain
    ([f"Root={ROOT};Lineage=1:{LOOP}:3"], 4),
    ([f"Root={ROOT};Lineage=1:{LOOP}:14", None], 0),  # a fresh message never inherits its neighbour's count
    ([f"Root={ROOT};Lineage=1:{LOOP}:14", f"Root={ROOT};Lineage=1:{LOOP}:2"], 3),  # the shortest chain
    ([f"Root={ROOT};Lineage=1:{LOOP}:9", f"Root={ROOT};Lineage=1:{LOOP}:9"], 10),  # a loop: all carry it
    ([f"Root={ROOT};Lineage=1:{LOOP}:5", "not a header"], 0),
    ([], 0),
])
def test_a_batchs_invocation_starts_a_new_trace_with_its_shortest_chain(traces, count):
    trace = tracing.for_batch(traces, "f", 1_700_000_000, counting_random())
    assert tracing.root_of(trace) == "1-6553f100-000102030405060708090a0b" != ROOT  # new, as Lambda's
    assert chain_count(trace, "f") == count


def test_a_batchs_invocation_keeps_the_other_functions_of_the_chosen_lineage_and_its_sampling():
    other = tracing.function_hash("g")
    trace = parse(tracing.for_batch([f"Root={ROOT};Sampled=1;Lineage=1:{other}:4|1:{LOOP}:2"], "f", 0))
    assert (trace.sampled, trace.lineage) == ("1", ((other, 4), (LOOP, 3)))
