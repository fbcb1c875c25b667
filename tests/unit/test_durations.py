import pytest

from lambdad.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("90s", 90.0),
        ("250ms", 0.25),
        ("5m", 300.0),
        ("6h", 21600.0),
        ("2d", 172800.0),
        ("1.5s", 1.5),
        (" 10s ", 10.0),
        (0, 0.0),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "m5", "-5", "5x", "1h30m", True, -1])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(90, "90s"), (300, "5m"), (21600, "6h"), (86400, "1d"), (0.25, "250ms"), (61, "61s")]
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "nan is not a duration: it must be a finite number of seconds"),
        (float("inf"), "inf is too large for a duration"),
        (float("-inf"), "-inf is negative"),
        (10**308 * 10, "a 310-digit number is too large for a duration"),  # float() raises OverflowError
        ("9" * 400 + "s", "'" + "9" * 54 + "...' is too large for a duration"),
        (None, "None is not a duration"),
        ([1], "[1] is not a duration"),
    ],
)
def test_parse_duration_refuses_what_no_timer_can_wait(value, message):
    with pytest.raises(ValueError) as e:
        parse_duration(value)
    assert str(e.value) == message


def test_negative_zero_is_zero():
    assert str(parse_duration(-0.0)) == "0.0"
