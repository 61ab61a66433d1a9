import signal
import sys

import pytest

from datadiet.runtime import stop
from studies import run_snakemake, study_overrides

# The whole-system tier: modules that start Slurm, a browser, or whole studies and jobs. `make test-fast` runs
# every other module (the unit tier, about 4 minutes on 2 cores) for every commit; `make test` runs both.
WHOLE_SYSTEM = {
    "test_cluster",
    "test_faults",
    "test_gpu_check",
    "test_mlflow_ui",
    "test_precision",
    "test_readme",
    "test_slurm_cluster",
    "test_study_run",
    "test_submission",
    "test_workflow",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.stem in WHOLE_SYSTEM:
            item.add_marker(pytest.mark.system)


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
