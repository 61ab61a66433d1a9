import signal
import sys

import pytest

from datadiet import stop
from studies import run_snakemake, study_overrides


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    """The tiny study, run locally once: (its results folder, its overrides file)."""
    tmp = tmp_path_factory.mktemp("study")
    overrides = study_overrides(tmp, tmp / "results")
    run_snakemake(overrides)
    return tmp / "results" / "tiny", overrides


@pytest.fixture
def stoppable():
    """This process as a job: a stop signal raises stop.Stopped (the handlers restored afterwards)."""
    previous = {signum: signal.getsignal(signum) for signum in stop.SIGNALS}
    unraisable_hook = sys.unraisablehook
    stop.install()
    yield
    stop.install()  # forgets the stop this test received
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    sys.unraisablehook = unraisable_hook
