"""Lambda's async retry policy as a table: attempts, waits, age limits, throttles, zero concurrency."""

import pytest

from lambdad.manifest.model import AsyncConfig
from lambdad.outcomes.retry import Final, RetryAt, after_function_error, after_throttle, on_claim
from lambdad.payloads.destinations import Condition

T0 = 1000.0
AWS = AsyncConfig()  # 2 retries, 1 and 2 minutes apart, 6 h of event age


@pytest.mark.parametrize(
    ("cfg", "errors", "now", "decision"),
    [
        (AWS, 1, T0, RetryAt(T0 + 60)),
        (AWS, 2, T0 + 60, RetryAt(T0 + 180)),
        (AWS, 3, T0 + 180, Final(Condition.retries_exhausted)),
        (AsyncConfig(maximum_retry_attempts=0), 1, T0, Final(Condition.retries_exhausted)),
        (AsyncConfig(maximum_retry_attempts=1, backoff_s=(5.0,)), 1, T0, RetryAt(T0 + 5)),
        (AsyncConfig(maximum_retry_attempts=2, backoff_s=(5.0,)), 2, T0, RetryAt(T0 + 5)),  # last wait repeats
        (AsyncConfig(maximum_event_age_s=90), 2, T0 + 60, Final(Condition.event_age_exceeded)),  # 180 > 90
        (AsyncConfig(maximum_event_age_s=180), 2, T0 + 60, RetryAt(T0 + 180)),  # exactly at the limit: allowed
    ],
)
def test_after_function_error(cfg, errors, now, decision):
    assert after_function_error(cfg, errors, T0, now) == decision


@pytest.mark.parametrize(
    ("throttles", "wait"), [(1, 1), (2, 2), (3, 4), (4, 8), (9, 256), (10, 300), (20, 300)]
)
def test_throttle_backoff_doubles_from_1s_to_5_minutes(throttles, wait):
    assert after_throttle(AWS, throttles, T0, T0) == RetryAt(T0 + wait)


def test_throttles_end_when_the_age_runs_out():
    cfg = AsyncConfig(maximum_event_age_s=10)
    assert after_throttle(cfg, 3, T0, T0 + 3) == RetryAt(T0 + 7)
    assert after_throttle(cfg, 4, T0, T0 + 7) == Final(Condition.event_age_exceeded)


@pytest.mark.parametrize(
    ("reserved", "age", "decision"),
    [
        (None, 0, None),
        (5, 21600, None),
        (0, 0, Final(Condition.zero_reserved_concurrency)),
        (None, 21600.5, Final(Condition.event_age_exceeded)),
    ],
)
def test_on_claim(reserved, age, decision):
    assert on_claim(AWS, reserved, T0, T0 + age) == decision
