"""A stop signal becomes one stop.Stopped, raised at once or when a shielded step ends; a second
signal does not cut the clean-up short."""

import os
import signal
import subprocess
import sys

import pytest

from datadiet.runtime import stop

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


# A job whose stop lands in a weakref callback (as SQLAlchemy's, run by the garbage collector, in CI):
# raised there, Python drops it and prints "Exception ignored"; the job must stop all the same.
STOP_IN_A_WEAKREF_CALLBACK = """
import os, signal, time, weakref
from datadiet.runtime import stop

stop.install()
thing = type("Thing", (), {})()
collected = weakref.ref(thing, lambda _: os.kill(os.getpid(), signal.SIGTERM) or time.sleep(0.1))
try:
    del thing
    time.sleep(10)
    print("went on")
except stop.Stopped as stopped:
    print("stopped by", stopped.signum)
"""


def test_a_stop_that_lands_where_python_drops_exceptions_is_raised_in_the_job_all_the_same():
    job = subprocess.run([sys.executable, "-c", STOP_IN_A_WEAKREF_CALLBACK], capture_output=True, text=True, timeout=60)
    assert (job.stdout, job.stderr) == (f"stopped by {signal.SIGTERM.value}\n", "")
