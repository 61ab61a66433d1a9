"""MLflow at the edge of a job: a real SQLite store, runs that end FINISHED, FAILED or KILLED."""
import os
import signal

import pytest
from mlflow.tracking import MlflowClient

from datadiet import tracking


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.init_store(uri, "study", tmp_path / "artifacts")
    return uri


def only_run(uri):
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("study").experiment_id])
    return run


def test_init_store_is_idempotent(store, tmp_path):
    assert tracking.init_store(store, "study", tmp_path / "artifacts") == \
        MlflowClient(store).get_experiment_by_name("study").experiment_id


def test_a_finished_job_has_flat_params_and_provenance_tags(store, tmp_path):
    artifact = tmp_path / "scores.csv"
    artifact.write_text("index,score\n0,1.5\n")
    with tracking.job_run(store, "study", "retrain el2n keep=0.5", {"train": {"lr": 0.1}, "run": 1},
                          {"rule": "retrain", "consumed_runs": "abc"}):
        tracking.log_metrics({"test_accuracy": 0.5}, step=1)
        tracking.log_artifact(artifact)
    run = only_run(store)
    assert run.info.status == "FINISHED" and run.info.run_name == "retrain el2n keep=0.5"
    assert run.data.params == {"train.lr": "0.1", "run": "1"}
    assert run.data.tags["rule"] == "retrain" and run.data.tags["consumed_runs"] == "abc"
    assert run.data.tags["git_commit"]
    assert run.data.metrics["test_accuracy"] == 0.5
    assert [a.path for a in MlflowClient(store).list_artifacts(run.info.run_id)] == ["scores.csv"]


def test_a_failing_job_leaves_its_run_failed(store):
    with pytest.raises(FloatingPointError):
        with tracking.job_run(store, "study", "diverges", {}, {}):
            raise FloatingPointError("loss became nan")
    assert only_run(store).info.status == "FAILED"


def test_sigterm_marks_the_run_killed(store):
    with pytest.raises(KeyboardInterrupt):
        with tracking.job_run(store, "study", "preempted", {}, {}):
            os.kill(os.getpid(), signal.SIGTERM)
    assert only_run(store).info.status == "KILLED"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the job's handler is gone afterwards


def test_a_job_without_an_initialised_store_says_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(RuntimeError, match="init-tracking"):
        with tracking.job_run(f"sqlite:///{tmp_path / 'new.db'}", "nowhere", "x", {}, {}):
            pass


def test_environment_uri_wins_over_the_config(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.resolve_uri("sqlite:///x.db") == "http://127.0.0.1:5000"
