"""The study as one MLflow run, in a real SQLite store: the report's files of a small study logged into it."""

import io
import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from datadiet.runtime import tracking
from datadiet.study import study_run
from datadiet.study.experiments import FIGURES as DRAWN

ACCURACY = pd.DataFrame(
    [
        ("cifar10", "resnet18", 0.0, "full", 1.0, 80.0),
        ("cifar10", "resnet18", 0.0, "random", 0.5, 70.0),
        ("cifar10", "resnet18", 0.0, "random", 0.3, 60.0),
        ("cifar10", "resnet18", 0.0, "el2n_e1", 0.5, 72.5),
        ("cifar10", "resnet18", 0.0, "el2n_e1", 0.3, 65.0),
        ("cifar10", "resnet18", 0.2, "full", 1.0, 50.0),
        ("cifar10", "resnet18", 0.2, "random", 0.5, 45.0),
    ],
    columns=["dataset", "arch", "noise", "method", "keep", "mean"],
).assign(std=1.0, count=2, train=99.0)

FIGURES = [figure.name for figure in DRAWN]  # every figure of the report
CLAIMS = pd.DataFrame(
    {"claim": ["EL2N@1 beats random", "NTK velocity rises with EL2N"], "estimate": [2.5, None],
     "verdict": ["underpowered", "not measured"]}
)  # fmt: skip
IDENTITY = {"study": "small", "train": {"lr": 0.1, "epochs": 3}}


@pytest.fixture
def small_study(tmp_path, monkeypatch):
    """A store with the experiment and three finished job runs, and the report's files of the study."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "small"}
    experiment_id = tracking.init_store(store["uri"], store["experiment"], tmp_path / "artifacts")
    client = MlflowClient(store["uri"])
    for name in ("train_scoring seed=0", "score el2n@1", "retrain el2n@1 keep=0.5"):
        add_job_run(client, experiment_id, name)
    figures = tmp_path / "figures"
    figures.mkdir()
    for name in FIGURES:
        (figures / f"{name}.png").write_bytes(b"\x89PNG " + name.encode())
    ACCURACY.to_csv(figures / "accuracy.csv", index=False)
    CLAIMS.to_csv(figures / "claims.csv", index=False)
    html = tmp_path / "report.html"
    html.write_text("<html>the report</html>")
    return client, experiment_id, store, figures, html


def add_job_run(client, experiment_id, name):
    run = client.create_run(experiment_id, tags={"rule": name.split()[0]}, run_name=name)
    client.set_terminated(run.info.run_id, "FINISHED")


def study_runs(client, experiment_id):
    """The live (not deleted) study runs."""
    return client.search_runs([experiment_id], f"tags.`{study_run.STUDY_RUN_TAG}` = 'true'")


def artifact_text(client, run_id, path):
    with tempfile.TemporaryDirectory() as folder:
        return Path(client.download_artifacts(run_id, path, folder)).read_text()


def curve(client, run_id, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_the_study_run_holds_the_curve_figures_claims_report_and_config_and_nests_the_job_runs(small_study):
    client, experiment_id, store, figures, html = small_study
    run_id = study_run.log_study(store, "small", IDENTITY, figures, html)

    (run,) = study_runs(client, experiment_id)
    assert run.info.run_id == run_id and run.info.run_name == "study small" and run.info.status == "FINISHED"
    # Step: percent pruned; every method's curve starts at the full-data accuracy.
    clean = "pruning_curve/cifar10/resnet18/noise0.0"
    assert curve(client, run_id, f"{clean}/el2n_e1") == [(0, 80.0), (50, 72.5), (70, 65.0)]
    assert curve(client, run_id, f"{clean}/random") == [(0, 80.0), (50, 70.0), (70, 60.0)]
    assert curve(client, run_id, "pruning_curve/cifar10/resnet18/noise0.2/random") == [(0, 50.0), (50, 45.0)]
    assert len(run.data.metrics) == 3  # none for "full" itself, none for EL2N@1 at noise 0.2 (not run)

    logged = {a.path for a in client.list_artifacts(run_id)}
    assert {"figures", "claims.json", "report.html", "study_config.json"} <= logged
    in_figures = {a.path for a in client.list_artifacts(run_id, "figures")}
    assert {f"figures/{name}.png" for name in FIGURES} | {"figures/claims.csv", "figures/accuracy.csv"} <= in_figures
    claims = pd.read_json(io.StringIO(artifact_text(client, run_id, "claims.json")), orient="split")
    pd.testing.assert_frame_equal(claims, CLAIMS)
    assert json.loads(artifact_text(client, run_id, "study_config.json")) == IDENTITY
    assert run.data.params["train.lr"] == "0.1" and run.data.tags["git_commit"]
    assert "3 job runs" in run.data.tags["mlflow.note.content"]

    jobs = study_run.job_runs(client, experiment_id)
    assert len(jobs) == 3 and {j.data.tags[MLFLOW_PARENT_RUN_ID] for j in jobs} == {run_id}


def test_a_report_made_again_replaces_the_study_run_and_takes_over_every_job_run(small_study):
    client, experiment_id, store, figures, html = small_study
    first = study_run.log_study(store, "small", IDENTITY, figures, html)
    add_job_run(client, experiment_id, "retrain random keep=0.3")  # a job the study gained since
    second = study_run.log_study(store, "small", IDENTITY, figures, html)

    assert [r.info.run_id for r in study_runs(client, experiment_id)] == [second]
    assert client.get_run(first).info.lifecycle_stage == "deleted"
    jobs = study_run.job_runs(client, experiment_id)
    assert len(jobs) == 4 and {j.data.tags[MLFLOW_PARENT_RUN_ID] for j in jobs} == {second}
    assert curve(client, second, "pruning_curve/cifar10/resnet18/noise0.0/el2n_e1")[-1] == (70, 65.0)


def test_a_report_that_fails_half_way_leaves_the_earlier_study_run(small_study):
    client, experiment_id, store, figures, html = small_study
    first = study_run.log_study(store, "small", IDENTITY, figures, html)
    with pytest.raises(FileNotFoundError):
        study_run.log_study(store, "small", IDENTITY, figures, html.with_name("missing.html"))
    failed = {r.info.run_id: r.info.status for r in study_runs(client, experiment_id)}
    assert failed.pop(first) == "FINISHED" and list(failed.values()) == ["FAILED"]
    # The next report cleans both up.
    third = study_run.log_study(store, "small", IDENTITY, figures, html)
    assert [r.info.run_id for r in study_runs(client, experiment_id)] == [third]
