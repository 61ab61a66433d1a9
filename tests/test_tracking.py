"""MLflow at the edge of a job: a real SQLite store, runs that end FINISHED, FAILED or KILLED, and the
stale runs of a job killed outright, marked when it runs again; a run that a later try goes on with; what
a training job logs of its data and its machine; the store a Slurm job may track to."""

import argparse
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from mlflow.tracking import MlflowClient

from benchmarks.startup import SPEC, job_files, train_scoring_command
from datadiet.runtime import files, hardware, stop, tracking
from datadiet.study.jobs import tracked

pytestmark = pytest.mark.usefixtures("own_store")


@pytest.fixture
def store(tmp_path):
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


def test_the_experiment_is_of_the_kind_the_ui_opens_on_its_runs_table(store, tmp_path):
    client = MlflowClient(store)
    assert client.get_experiment_by_name("study").tags["mlflow.experimentKind"] == "custom_model_development"
    older = client.create_experiment("made before the tag")  # by an earlier datadiet
    tracking.init_store(store, "made before the tag", tmp_path / "artifacts")
    assert client.get_experiment(older).tags["mlflow.experimentKind"] == "custom_model_development"


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
    files.write_json({"uri": store, "experiment": "study"}, tmp_path / "store.json")
    args = argparse.Namespace(
        tracked=tmp_path / "store.json", rule="score", threads=2, wildcards={"seed": "0"}, ends_job=True
    )
    with tracked.run(args, "score el2n@0 seed=0", {"kind": "el2n"}, tmp_path / "el2n.csv", device=torch.device("cpu")):
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


def test_a_job_without_an_initialised_store_says_how_to_fix_it(tmp_path):
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


def history(uri, run_id, key):
    """(step, value) of a metric as it was logged, in time order."""
    logged = MlflowClient(uri).get_metric_history(run_id, key)
    return [(m.step, m.value) for m in sorted(logged, key=lambda m: (m.timestamp, m.step))]


def test_a_later_try_goes_on_in_the_run_and_logs_no_step_twice(store):
    with pytest.raises(KeyboardInterrupt):
        with tracking.job_run(store, "study", "retrain", {"lr": 0.1}, {}, output="out") as first:
            for epoch in (1, 2, 3):
                tracking.log_metrics({"loss": 1 / epoch}, step=epoch)
            raise KeyboardInterrupt  # stopped after epoch 3; its state was saved at epoch 2
    assert only_run(store).info.status == "KILLED"
    with tracking.job_run(store, "study", "retrain", {"lr": 0.1}, {}, "out", resume=first.info.run_id) as second:
        for epoch in (3, 4):  # epoch 3 again, from the state of epoch 2
            tracking.log_metrics({"loss": 1 / epoch}, step=epoch)
        tracking.log_metrics({"final": 0.9})
    run = only_run(store)
    assert second.info.run_id == first.info.run_id == run.info.run_id and run.info.status == "FINISHED"
    assert history(store, run.info.run_id, "loss") == [(1, 1.0), (2, 0.5), (3, 1 / 3), (4, 0.25)]
    assert history(store, run.info.run_id, "final") == [(0, 0.9)]
    assert run.data.params == {"lr": "0.1"} and "replaced_by" not in run.data.tags


def test_a_run_that_cannot_go_on_is_replaced_by_a_new_one(store):
    with tracking.job_run(store, "study", "retrain", {"lr": 0.1}, {}, output="out") as first:
        tracking.log_metrics({"loss": 1.0}, step=1)
    for resume in (first.info.run_id, "0123456789abcdef0123456789abcdef"):  # other params; not in the store
        with tracking.job_run(store, "study", "retrain", {"lr": 0.2}, {}, "out", resume=resume) as later:
            tracking.log_metrics({"loss": 2.0}, step=1)
        assert later.info.run_id != first.info.run_id
        assert history(store, later.info.run_id, "loss") == [(1, 2.0)]
    assert history(store, first.info.run_id, "loss") == [(1, 1.0)]  # left as it was


def test_a_run_asked_to_sample_the_system_s_use_does(store, monkeypatch):
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    with tracking.job_run(store, "study", "on a gpu", {}, {}, output="out", system_metrics=True):
        time.sleep(1.5)
    assert "system/cpu_utilization_percentage" in only_run(store).data.metrics


SAME_SET_AT = """
import sys, time, mlflow, torch
from datadiet.runtime import tracking
uri, start = sys.argv[1], float(sys.argv[2])
mlflow.set_tracking_uri(uri)
for r in range(3):
    with mlflow.start_run(experiment_id=mlflow.get_experiment_by_name("study").experiment_id):
        while time.time() < start + r:
            time.sleep(0.001)
        tracking.log_training_set(f"set {r}", torch.arange(100), torch.zeros(100, dtype=torch.long), "data.pt")
"""


def test_jobs_logging_the_same_training_set_at_once_all_log_it_once(store):
    """Runs on one subset share its dataset: jobs that start together race to create it, and the store
    refuses all but one (UNIQUE constraint). Each job still logs it."""
    start = time.time() + 6  # past every process's imports
    command = [sys.executable, "-c", SAME_SET_AT, store, str(start)]
    jobs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    failures = [err for job in jobs if (err := job.communicate()[1]) and job.returncode != 0]
    assert failures == [], failures[0][-2000:]
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("study").experiment_id])
    assert len(runs) == 12
    for r in range(3):
        logged = [run for run in runs if [d.dataset.name for d in run.inputs.dataset_inputs] == [f"set {r}"]]
        assert len(logged) == 4 and len({run.inputs.dataset_inputs[0].dataset.digest for run in logged}) == 1


def training_args(tmp_path):
    """The options of a tracked training job on the files of job_files(tmp_path), run in this process."""
    return argparse.Namespace(
        tracked=tmp_path / "store.json",
        dataset=tmp_path / "dataset.pt",
        rule="retrain",
        wildcards={"rep": "0"},
        threads=1,
        device="cpu",
        ends_job=True,
    )


def test_a_training_job_logs_its_subset_as_a_dataset_and_no_system_metrics_on_the_cpu(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", raising=False)
    uri = job_files(tmp_path, experiment="study")
    args = training_args(tmp_path)
    dataset, labels = files.load_tensors(args.dataset), files.load_tensors(tmp_path / "labels.pt")["labels"]
    subset = torch.arange(0, 192, 2)
    how = {"kind": "keep_max"}
    spec = {**SPEC, "checkpoint_epochs": [], "method": "el2n_e2", "keep": 0.5, "selection": how, "study": "study"}
    training = tracked.Training(args, spec, dataset, labels, subset)
    result = tracked.run_training(training, "retrain el2n@2 keep=0.5 rep=0", tmp_path / "retrain")
    run = MlflowClient(uri).get_run(result["run_id"])
    (used,) = run.inputs.dataset_inputs
    digest = hashlib.sha256(subset.numpy().tobytes() + labels[subset].numpy().tobytes()).hexdigest()[:16]
    assert (used.dataset.name, used.dataset.digest) == ("synthetic noise=0.0 el2n@2 keep=0.5 rep=0", digest)
    assert [(tag.key, tag.value) for tag in used.tags] == [("mlflow.data.context", "training")]
    assert str(tmp_path / "dataset.pt") in used.dataset.source
    assert run.data.metrics and not [key for key in run.data.metrics if key.startswith("system/")]


def datadiet(*args, env):
    return subprocess.run([sys.executable, "-m", "datadiet", *map(str, args)], capture_output=True, text=True, env=env)


def job_env(**variables):
    """This environment, the tests' store unless MLFLOW_TRACKING_URI is given, and `variables`."""
    kept = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DATADIET_TRACEBACK")}
    return {**kept, **variables}


def init_tracking(tmp_path, env):
    """The workflow's first step, its store in tmp_path/store (unless MLFLOW_TRACKING_URI names one)."""
    store, out = tmp_path / "store", tmp_path / "store.json"
    return datadiet("job", "init-tracking", "--store-dir", store, "--experiment", "faults", "--out", out, env=env)


def test_an_sqlite_store_is_refused_inside_a_slurm_job_with_one_line(tmp_path):
    env = job_env(SLURM_JOB_ID="4242")
    init = init_tracking(tmp_path / "init", env)
    assert not (tmp_path / "init").exists()  # no store, no marker
    job_files(tmp_path)  # an SQLite store made outside Slurm (on the login node, say) and its marker
    train = subprocess.run(train_scoring_command(tmp_path, tmp_path / "out"), capture_output=True, text=True, env=env)
    for proc, step in ((init, "init-tracking"), (train, "train-scoring")):
        assert proc.returncode == 1
        (line,) = proc.stderr.splitlines()
        assert line.startswith(f"datadiet job {step}: error: Slurm job 4242 would track to the SQLite file sqlite:")
        assert "`datadiet mlflow-server --host 0.0.0.0`" in line and "MLFLOW_TRACKING_URI" in line
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.search_runs([client.get_experiment_by_name("faults").experiment_id]) == []


def test_a_slurm_job_tracks_to_a_server(tmp_path, mlflow_server):
    env = job_env(SLURM_JOB_ID="4242", MLFLOW_TRACKING_URI=mlflow_server)
    job_files(tmp_path)  # the dataset and labels files (and a local store, which the server replaces)
    init = init_tracking(tmp_path, env)
    assert init.returncode == 0, init.stderr
    assert files.read_json(tmp_path / "store.json")["uri"] == mlflow_server
    train = subprocess.run(train_scoring_command(tmp_path, tmp_path / "out"), capture_output=True, text=True, env=env)
    assert train.returncode == 0, train.stderr
    client = MlflowClient(mlflow_server)
    run = client.get_run(files.read_json(tmp_path / "out" / "result.json")["run_id"])
    assert run.info.status == "FINISHED" and run.inputs.dataset_inputs
