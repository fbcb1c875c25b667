"""SignalInbox records signals for the loop and restores the previous handlers."""

import signal
import time

from lambdad.signals import SignalInbox


def test_signals_are_recorded_and_wake_the_wait():
    before = signal.getsignal(signal.SIGHUP)
    with SignalInbox() as inbox:
        signal.raise_signal(signal.SIGHUP)
        t0 = time.monotonic()
        inbox.wait(30)  # returns at once: the signal is already waiting
        assert time.monotonic() - t0 < 5
        assert inbox.take() == [signal.SIGHUP]
        assert inbox.take() == []
    assert signal.getsignal(signal.SIGHUP) == before


def test_wait_times_out_without_signals():
    with SignalInbox() as inbox:
        t0 = time.monotonic()
        inbox.wait(0.05)
        assert time.monotonic() - t0 >= 0.04
        assert inbox.take() == []
