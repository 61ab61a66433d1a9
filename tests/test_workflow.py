"""The whole DAG, end to end, on a few hundred real CIFAR-10 images (synthetic JPEGs without ../shared)."""
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient
from torchvision.io import encode_jpeg

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config/tiny.yaml"]


def synthetic_jpeg_tar(path, per_class=40, classes=10):
    """A CIFAR-shaped stand-in (used only where ../shared/data is absent)."""
    g = torch.Generator().manual_seed(0)
    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", per_class), ("test", per_class // 2)):
            for c in range(classes):
                for i in range(n):
                    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g)
                    image[c % 3] = image[c % 3] // 2 + 25 * c
                    payload = encode_jpeg(image).numpy().tobytes()
                    info = tarfile.TarInfo(f"cifar10/{split}/class{c}/{i:04d}.jpg")
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
    return path


def run_snakemake(overrides, *args, check=True):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = SNAKEMAKE + [str(overrides), *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}")
    return proc


def write_overrides(tmp, **config):
    path = tmp / f"overrides-{len(list(tmp.glob('overrides-*')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    overrides = {"results_dir": str(tmp / "results")}
    if not CIFAR.exists():
        overrides["data"] = {"path": str(synthetic_jpeg_tar(tmp / "synthetic.tar.gz"))}
    path = write_overrides(tmp, **overrides)
    run_snakemake(path)
    return tmp / "results" / "tiny", path


def test_report_has_the_figures_the_table_and_every_run_id(study):
    out, _ = study
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    for heading in ("Pruning curve", "Final test accuracy", "Rank correlation", "Every run", "Kirsch 2023"):
        assert heading in page
    accuracy = pd.read_csv(out / "figures" / "accuracy.csv")
    assert set(accuracy.method) == {"full", "random", "el2n_e1", "grand_e0", "grand_e1", "forgetting", "input_norm"}
    assert (accuracy["count"] == 2).all() and accuracy["mean"].between(0, 100).all()
    for result in out.glob("retrain/*/*/*/*/result.json"):
        assert yaml.safe_load(result.read_text())["run_id"] in page


def test_score_files_cover_every_example_per_seed_and_as_mean(study):
    out, _ = study
    for score in ("grand_e0", "grand_e1", "el2n_e1", "forgetting"):
        mean = pd.read_csv(out / "scores" / "noise0.0" / score / "mean.csv")
        assert list(mean["index"]) == list(range(300))
        assert list(mean.columns) == ["index", "label", "mean", "seed0", "seed1"]
        assert mean["mean"].to_numpy() == pytest.approx(mean[["seed0", "seed1"]].mean(axis=1).to_numpy())
        for seed in (0, 1):
            assert len(pd.read_csv(out / "scores" / "noise0.0" / score / f"seed{seed}.csv")) == 300
    norms = pd.read_csv(out / "scores" / "noise0.0" / "input_norm" / "mean.csv")
    assert len(norms) == 300 and (norms["mean"] > 0).all()
    assert (pd.read_csv(out / "scores" / "noise0.0" / "grand_e0" / "mean.csv")["mean"] > 0).all()


def test_every_job_is_one_finished_mlflow_run_with_params_and_provenance(study):
    out, _ = study
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    by_rule = pd.Series([r.data.tags["rule"] for r in runs]).value_counts().to_dict()
    # 2 scoring trainings, 3 scores x 2 seeds, input norm, 6 methods x 1 pruned level x 2 repeats + 2 full
    assert by_rule == {"train_scoring": 2, "score": 6, "input_norm": 1, "retrain": 14}
    assert {r.info.status for r in runs} == {"FINISHED"}
    ids = {r.info.run_id for r in runs}
    for r in runs:
        assert r.data.tags["git_commit"]
        if r.data.tags["rule"] in ("train_scoring", "retrain"):
            assert r.data.params["train.lr"] == "0.1" and r.data.params["model.width"] == "4"
            assert "final_test_accuracy" in r.data.metrics
        consumed = [c for c in r.data.tags["consumed_runs"].split(",") if c]
        assert set(consumed) <= ids
        if r.data.tags["rule"] == "retrain" and r.data.tags["wildcard.method"] not in ("full", "random"):
            assert consumed, r.info.run_name  # a retraining run names the scoring runs that chose its subset
        if r.data.tags["rule"] == "score":
            assert len(consumed) == 1  # the training run whose checkpoint it scored
    assert any(r.info.run_name == "retrain el2n_e1 keep=0.5 rep=1 noise=0.0" for r in runs)


def test_second_run_has_nothing_to_do_and_snakemake_report_works(study):
    out, overrides = study
    assert "Nothing to be done" in run_snakemake(overrides, "-n").stdout
    run_snakemake(overrides, "--report", str(out / "snakemake-report.html"))
    assert (out / "snakemake-report.html").stat().st_size > 10_000


@pytest.mark.parametrize("override, message", [
    ({"pruning": {"kept": [1.5]}}, "1.5 is greater than the maximum of 1"),
    ({"train": {"epochs": "many"}}, "'many' is not of type 'integer'"),
    ({"trian": {"epochs": 3}}, "'trian' was unexpected"),
    ({"data": {"path": "/nonexistent/cifar.tar.gz"}}, "/nonexistent/cifar.tar.gz"),
    ({"pruning": {"methods": ["el2n_e7"]}}, "'el2n_e7' needs a score"),
])
def test_bad_config_is_one_clear_error_naming_it(tmp_path, override, message):
    proc = run_snakemake(write_overrides(tmp_path, results_dir=str(tmp_path), **override), "-n", check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
