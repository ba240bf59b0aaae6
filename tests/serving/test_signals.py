"""`aip serve`'s stop signals, without a server: each one interrupts once, then nothing can cut the stop short."""

from __future__ import annotations

import os
import signal

import pytest

from infra.serving.local import STOP_SIGNALS, Interrupted, _signals_ignored, _stop_signals_interrupt


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT], ids=lambda s: s.name)
def test_each_stop_signal_interrupts_once_and_then_every_stop_signal_is_ignored(sig: signal.Signals):
    before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    with _stop_signals_interrupt():
        with pytest.raises(Interrupted):
            os.kill(os.getpid(), sig)
        assert all(signal.getsignal(s) == signal.SIG_IGN for s in STOP_SIGNALS)
        for again in STOP_SIGNALS:  # a second Ctrl-C, the terminal closing…: nothing happens
            os.kill(os.getpid(), again)
    assert {s: signal.getsignal(s) for s in STOP_SIGNALS} == before


def test_stopping_ignores_every_stop_signal_and_restores_the_handlers():
    before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    with _stop_signals_interrupt(), _signals_ignored():
        for sig in STOP_SIGNALS:
            os.kill(os.getpid(), sig)
    assert {s: signal.getsignal(s) for s in STOP_SIGNALS} == before
