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
    assert "mlflow.note.content" not in run.data.tags  # no run "abc" in the store to link to
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


@pytest.mark.parametrize("method, label", [
    ("el2n_e2", "el2n@2"), ("ccs-el2n_e2", "ccs-el2n@2"), ("grand_e0", "grand@0"),
    ("window-el2n_e20", "window-el2n@20"), ("el2n_e1-from-resnet50", "el2n@1-from-resnet50"),
    ("input_norm", "input_norm"), ("random", "random"),
])
def test_run_names_show_a_method_with_its_epoch_after_an_at(method, label):
    assert tracking.method_label(method) == label


def test_links_description_is_markdown_with_a_link_to_each_run_page():
    assert tracking.links_description([("1", "abc", "score el2n@1 seed=0"), ("1", "def", "score el2n@1 seed=1")]) == (
        "Uses the outputs of:\n\n"
        "- [score el2n@1 seed=0](#/experiments/1/runs/abc)\n"
        "- [score el2n@1 seed=1](#/experiments/1/runs/def)")


def test_a_job_links_the_runs_it_consumed_from_its_description(store):
    with tracking.job_run(store, "study", "score el2n@1 seed=0", {}, {"consumed_runs": ""}) as score:
        pass
    with tracking.job_run(store, "study", "retrain el2n@1 keep=0.5 rep=1", {},
                          {"consumed_runs": score.info.run_id}) as retrain:
        pass
    client = MlflowClient(store)
    experiment_id = score.info.experiment_id
    assert client.get_run(retrain.info.run_id).data.tags["mlflow.note.content"] == (
        f"Uses the outputs of:\n\n- [score el2n@1 seed=0](#/experiments/{experiment_id}/runs/{score.info.run_id})")
    assert "mlflow.note.content" not in client.get_run(score.info.run_id).data.tags
