"""A stop signal becomes one stop.Stopped, raised at once or when a shielded step ends; a second
signal does not cut the clean-up short."""

import os
import signal

import pytest

from datadiet import stop

pytestmark = pytest.mark.usefixtures("stoppable")


def sigterm():
    os.kill(os.getpid(), signal.SIGTERM)


def test_a_stop_is_raised_at_once_outside_a_shield():
    steps = []
    with pytest.raises(stop.Stopped, match="stopped by signal 15"):
        sigterm()
        steps.append("after")
    assert steps == [] and stop.received() == signal.SIGTERM


def test_a_stop_inside_nested_shields_is_raised_once_when_the_outer_one_ends():
    steps = []
    with pytest.raises(stop.Stopped):
        with stop.shielded():
            with stop.shielded():
                sigterm()
                steps.append("inner")
            steps.append("outer")
        steps.append("after")
    assert steps == ["inner", "outer"]


def test_a_second_signal_does_not_interrupt_the_clean_up():
    cleaned = False
    try:
        sigterm()
    except stop.Stopped:
        sigterm()  # Slurm or a user stopping again while the job ends its run
        cleaned = True
    assert cleaned


def test_an_error_inside_a_shield_goes_on_and_the_stop_is_still_known():
    with pytest.raises(ValueError):
        with stop.shielded():
            sigterm()
            raise ValueError("the step failed")
    assert stop.received() == signal.SIGTERM
    with pytest.raises(stop.Stopped):  # no new step starts after a stop
        stop.check()


def test_after_done_a_stop_changes_nothing():
    stop.done()
    sigterm()
    assert stop.received() is None


def test_a_named_point_stops_only_when_asked(monkeypatch):
    stop.point("write:result.json")
    monkeypatch.setenv(stop.POINT_VARIABLE, "write:result.json")
    stop.point("run:end")
    with pytest.raises(stop.Stopped):
        stop.point("write:result.json")


def test_slurm_s_warning_before_the_time_limit_is_a_stop():
    """SIGUSR1, which Slurm sends ahead of the time limit when asked (--signal=USR1@300)."""
    with pytest.raises(stop.Stopped, match=f"stopped by signal {signal.SIGUSR1.value}"):
        os.kill(os.getpid(), signal.SIGUSR1)
    assert stop.received() == signal.SIGUSR1
