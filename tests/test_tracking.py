"""MLflow at the edge of a job: a real SQLite store, runs that end FINISHED, FAILED or KILLED, and the
stale runs of a job killed outright, marked when it runs again."""

import argparse
import os
import signal
import socket
import subprocess

import pytest
import torch
from mlflow.tracking import MlflowClient

from datadiet import hardware, results, stop, tracking
from datadiet.study import job


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
    assert (
        tracking.init_store(store, "study", tmp_path / "artifacts")
        == MlflowClient(store).get_experiment_by_name("study").experiment_id
    )


def test_a_finished_job_has_flat_params_and_provenance_tags(store, tmp_path):
    artifact = tmp_path / "scores.csv"
    artifact.write_text("index,score\n0,1.5\n")
    with tracking.job_run(
        store,
        "study",
        "retrain el2n keep=0.5",
        {"train": {"lr": 0.1}, "run": 1},
        {"rule": "retrain", "consumed_runs": "abc"},
        output="out",
        ends_job=False,
    ):
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


def test_a_job_run_is_tagged_with_where_it_ran_and_the_torch_build(store, tmp_path):
    results.write_json({"uri": store, "experiment": "study"}, tmp_path / "store.json")
    args = argparse.Namespace(tracked=tmp_path / "store.json", rule="score", threads=2, wildcards={"seed": "0"})
    with job.run(args, "score el2n@0 seed=0", {"kind": "el2n"}, tmp_path / "el2n.csv", device=torch.device("cpu")):
        pass
    tags = only_run(store).data.tags
    assert tags["device"] == "cpu" and tags["threads"] == "2" and tags["wildcard.seed"] == "0"
    assert tags["device.name"] == hardware.cpu_name() != ""
    assert tags["device.capability"] == tags["device.driver"] == "none"  # a GPU's only
    assert tags["torch.version"] == torch.__version__
    assert tags["torch.cuda"] == (torch.version.cuda or "none")


def test_a_failing_job_leaves_its_run_failed(store):
    with pytest.raises(FloatingPointError):
        with tracking.job_run(store, "study", "diverges", {}, {}, output="out"):
            raise FloatingPointError("loss became nan")
    assert only_run(store).info.status == "FAILED"


def test_a_run_whose_start_fails_half_way_is_failed_not_left_running(store):
    with pytest.raises(Exception, match="bad|name"):
        with tracking.job_run(store, "study", "too long", {"bad|name": 1}, {}, output="out"):
            pass
    assert only_run(store).info.status == "FAILED"


def test_sigterm_marks_the_run_killed(store, stoppable):
    with pytest.raises(stop.Stopped, match="stopped by signal 15"):
        with tracking.job_run(store, "study", "preempted", {}, {}, output="out"):
            os.kill(os.getpid(), signal.SIGTERM)
    assert only_run(store).info.status == "KILLED"


def test_a_stop_inside_an_mlflow_call_is_raised_when_the_call_is_done(store, stoppable):
    with pytest.raises(stop.Stopped):
        with tracking.job_run(store, "study", "preempted", {}, {}, output="out"):
            with stop.shielded():
                os.kill(os.getpid(), signal.SIGTERM)
                tracking.log_metrics({"loss": 1.0})  # still logged: the stop waits for the step's end
            raise AssertionError("not reached: the stop is raised when the shield ends")
    run = only_run(store)
    assert run.info.status == "KILLED" and run.data.metrics["loss"] == 1.0


def test_a_stop_before_the_run_starts_leaves_no_run(store, stoppable, monkeypatch):
    monkeypatch.setenv(stop.POINT_VARIABLE, "run:start")
    with pytest.raises(stop.Stopped):
        with tracking.job_run(store, "study", "preempted", {}, {}, output="out"):
            pass
    client = MlflowClient(store)
    assert client.search_runs([client.get_experiment_by_name("study").experiment_id]) == []


def test_a_stop_as_the_run_ends_lets_the_job_finish(store, stoppable, monkeypatch):
    monkeypatch.setenv(stop.POINT_VARIABLE, "run:end")
    with tracking.job_run(store, "study", "almost done", {}, {}, output="out"):
        pass
    assert only_run(store).info.status == "FINISHED"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # the job is done: later stops change nothing


def test_a_rerun_marks_the_stale_running_run_of_its_job_killed_and_names_itself(store, tmp_path):
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("study").experiment_id
    dead = subprocess.Popen(["true"])
    dead.wait()
    job = tracking.job_tag(tmp_path / "result.json")
    # Runs left RUNNING by jobs killed outright (SIGKILL) on this machine and on another node, one of
    # another job, and one whose process is still alive here (not stale: left alone).
    stale_here = client.create_run(experiment, tags={"job": job, "host": socket.gethostname(), "pid": str(dead.pid)})
    stale_node = client.create_run(experiment, tags={"job": job, "host": "node17", "pid": "1"})
    other_job = client.create_run(experiment, tags={"job": tracking.job_tag("elsewhere"), "host": "node17"})
    alive = client.create_run(experiment, tags={"job": job, "host": socket.gethostname(), "pid": str(os.getpid())})
    with tracking.job_run(store, "study", "retrain", {}, {}, output=tmp_path / "result.json") as rerun:
        pass
    for stale in (stale_here, stale_node):
        run = client.get_run(stale.info.run_id)
        assert run.info.status == "KILLED" and run.data.tags["replaced_by"] == rerun.info.run_id
    for untouched in (other_job, alive):
        run = client.get_run(untouched.info.run_id)
        assert run.info.status == "RUNNING" and "replaced_by" not in run.data.tags
    assert client.get_run(rerun.info.run_id).data.tags["job"] == job


def test_a_job_without_an_initialised_store_says_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(RuntimeError, match="init-tracking"):
        with tracking.job_run(f"sqlite:///{tmp_path / 'new.db'}", "nowhere", "x", {}, {}, output="out"):
            pass


def test_environment_uri_wins_over_the_config(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.resolve_uri("sqlite:///x.db") == "http://127.0.0.1:5000"


def test_links_description_is_markdown_with_a_link_to_each_run_page():
    assert tracking.links_description([("1", "abc", "score el2n@1 seed=0"), ("1", "def", "score el2n@1 seed=1")]) == (
        "Uses the outputs of:\n\n"
        "- [score el2n@1 seed=0](#/experiments/1/runs/abc)\n"
        "- [score el2n@1 seed=1](#/experiments/1/runs/def)"
    )


def test_a_job_links_the_runs_it_consumed_from_its_description(store):
    with tracking.job_run(store, "study", "score el2n@1 seed=0", {}, {"consumed_runs": ""}, output="a") as score:
        pass
    with tracking.job_run(
        store, "study", "retrain el2n@1 keep=0.5 rep=1", {}, {"consumed_runs": score.info.run_id}, output="b"
    ) as retrain:
        pass
    client = MlflowClient(store)
    experiment_id = score.info.experiment_id
    assert client.get_run(retrain.info.run_id).data.tags["mlflow.note.content"] == (
        f"Uses the outputs of:\n\n- [score el2n@1 seed=0](#/experiments/{experiment_id}/runs/{score.info.run_id})"
    )
    assert "mlflow.note.content" not in client.get_run(score.info.run_id).data.tags
