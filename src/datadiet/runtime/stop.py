"""Stopping a job at any moment. Slurm and Snakemake stop jobs with SIGTERM (preemption, time limit,
a cancelled workflow), Slurm warns of the time limit with SIGUSR1 when asked (`--signal=USR1@300`), a
user stops with Ctrl-C: each becomes one `Stopped` exception, raised where the job is, so that what it
leaves is clean (an MLflow run KILLED, no half-written file, the training state saved) and the same
command resumes. Steps that must not be cut in two (an MLflow call, the end of a run) run
`shielded()`: a stop that arrives inside one is raised when the step is done. A stop that lands where
Python drops exceptions (a weakref callback or `__del__` run by the garbage collector) is sent again.

Only the standard library here: the entry point installs the handler before it imports anything.
"""

import contextlib
import os
import signal
import sys
import threading

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
# Fault injection for the tests: the job sends itself SIGTERM when it reaches the named point.
POINT_VARIABLE = "DATADIET_STOP_AT"


class Stopped(KeyboardInterrupt):
    def __init__(self, signum):
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


_received = None  # the first stop signal; later ones are ignored while the job cleans up
_pending = False  # received inside a shield, not raised yet
_shields = 0


def _handler(signum, frame):
    global _received, _pending
    if _received is not None:
        return
    _received = signum
    if _shields:
        _pending = True
    else:
        raise Stopped(signum)


def _unraisable(unraisable):
    """Python reports here an exception it had to drop (one raised in a weakref callback, say, which
    SQLAlchemy's registry runs as objects are collected): a stop raised there is sent again, from
    another thread a moment later, so that it is raised in the job's own code."""
    global _received
    if not isinstance(unraisable.exc_value, Stopped):
        sys.__unraisablehook__(unraisable)  # Python's own report
    else:  # forgotten, so that the handler takes it again
        _received = None
        threading.Timer(0.01, os.kill, (os.getpid(), unraisable.exc_value.signum)).start()


def install():
    """From now until `done()`, a stop signal raises `Stopped`."""
    global _received, _pending
    _received, _pending = None, False
    for signum in SIGNALS:
        signal.signal(signum, _handler)
    sys.unraisablehook = _unraisable


def done():
    """The job's work is complete: a stop from here on changes nothing, and the process exits 0.
    (Only where `install()` took the signals: a library caller keeps its own handlers.)"""
    global _pending
    _pending = False
    for signum in SIGNALS:
        if signal.getsignal(signum) is _handler:
            signal.signal(signum, signal.SIG_IGN)


def received():
    """The stop signal this process received, or None: sticky, so no new work starts after a stop."""
    return _received


def check():
    """Raise `Stopped` if a stop arrived (inside a shield, say) and no new step should start."""
    if _received is not None:
        raise Stopped(_received)


@contextlib.contextmanager
def shielded():
    """Run a step whole: a stop that arrives inside it is raised when it ends (unless it failed)."""
    global _shields, _pending
    _shields += 1
    try:
        yield
    except BaseException:
        _pending = False  # the step's own exception goes on; received() still tells of the stop
        raise
    finally:
        _shields -= 1
    if _pending and not _shields:
        _pending = False
        raise Stopped(_received)


def point(name):
    """A named moment of a job's life, where the tests can stop it (POINT_VARIABLE)."""
    if os.environ.get(POINT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGTERM)
