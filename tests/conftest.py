import os
import signal
import sys

import pytest

from datadiet.runtime import stop
from servers import running_mlflow_server
from studies import run_snakemake, study_overrides

# The variables through which the shell running the tests would reach into them: its MLflow store, the
# traceback switch, a Slurm job's id (a job refuses SQLite stores) and the resume files' interval.
OUTSIDE = ("MLFLOW_TRACKING_URI", "DATADIET_TRACEBACK", "SLURM_JOB_ID", "DATADIET_STATE_EVERY_S")

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


def shut_out(patch):
    """The tests' own stores, whatever the shell points MLflow at, and SQLite ones even inside a Slurm job.
    MLFLOW_TRACKING_URI is set first, so that the one MLflow sets (for subprocesses) when a run starts in
    this process is removed too."""
    patch.setenv("MLFLOW_TRACKING_URI", "")
    for name in OUTSIDE:
        patch.delenv(name, raising=False)


@pytest.fixture
def own_store(monkeypatch):
    """The environment of `shut_out`, for one test."""
    shut_out(monkeypatch)


@pytest.fixture(scope="module")
def own_module_store():
    """The environment of `shut_out`, for a module whose module-scoped fixtures run jobs."""
    with pytest.MonkeyPatch.context() as patch:
        shut_out(patch)
        yield


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`datadiet mlflow-server` on loopback, in an environment of none of OUTSIDE; yields its URI."""
    env = {k: v for k, v in os.environ.items() if k not in OUTSIDE}
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow-server"), env=env) as uri:
        yield uri
