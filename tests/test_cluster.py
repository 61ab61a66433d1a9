"""The cluster path for real: the tiny study through `snakemake --profile profiles/slurm` on a
single-node Slurm started here, every job logging to an MLflow tracking server started here."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

import slurm_cluster
from datadiet.study import study_run
from datadiet.study.estimate import planned_jobs as plan
from datadiet.study.jobs.tracked import STATE_EVERY_VARIABLE
from studies import ROOT, UNTRACKED, job_key, max_overlap, run_snakemake, study_overrides, write_overrides


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = slurm_cluster.why_not()
    if reason:
        pytest.skip(f"no test Slurm cluster on this machine: {reason}")
    running = slurm_cluster.Cluster(tmp_path_factory.mktemp("slurm")).start()
    yield running
    running.stop()


def on_slurm(overrides, mlflow_server, log, targets=(), env=None):
    """Snakemake through profiles/slurm on the tiny preset and `overrides`, jobs logging to the server;
    `env`: more variables (the jobs get them too)."""
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}", **(env or {})}
    cmd = [sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", *slurm_cluster.SNAKEMAKE_OPTIONS]
    cmd += map(str, targets)
    cmd += ["--configfile", "config/tiny.yaml", str(overrides)]  # targets before: after, they are config files
    env["MLFLOW_TRACKING_URI"] = mlflow_server
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def slurm_study(cluster, mlflow_server, tmp_path_factory):
    """The tiny study through profiles/slurm, watched with squeue while it runs."""
    tmp = tmp_path_factory.mktemp("slurm-study")
    overrides = study_overrides(tmp, tmp / "results")
    log = open(tmp / "snakemake.log", "w")
    run = on_slurm(overrides, mlflow_server, log)
    seen, most_running = set(), 0
    while run.poll() is None:
        queue = subprocess.run(["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True).stdout.split("\n")
        jobs = [line.split() for line in queue if line.strip()]
        seen |= {job_id for job_id, _ in jobs}
        most_running = max(most_running, sum(state == "RUNNING" for _, state in jobs))
        time.sleep(2)
    log.close()
    if run.returncode != 0:
        raise AssertionError(f"snakemake --profile slurm failed:\n{(tmp / 'snakemake.log').read_text()[-6000:]}")
    return {
        "log": (tmp / "snakemake.log").read_text(),
        "out": tmp / "results" / "tiny",
        "overrides": overrides,
        "seen": seen,
        "most_running": most_running,
        "uri": mlflow_server,
        "cluster": cluster,
    }


def planned_jobs(overrides):
    return plan(ROOT / "config" / "tiny.yaml", [str(overrides)])


def test_every_job_but_the_local_ones_was_a_slurm_job_seen_in_squeue(slurm_study):
    completed, log = slurm_study["cluster"].completed, slurm_study["log"]
    # Snakemake's log names a job it submits `rule <name>:` and one it runs itself `localrule <name>:`.
    submitted, local = re.findall(r"^rule (\w+):", log, re.M), re.findall(r"^localrule (\w+):", log, re.M)
    total = int(re.search(r"^total\s+(\d+)$", log, re.M).group(1))  # the DAG's jobs, from its job stats
    assert len(submitted) + len(local) == total and local and not set(submitted) & set(local)
    assert len(completed) == len(submitted)
    assert {job["JobState"] for job in completed} == {"COMPLETED"}
    seen = slurm_study["seen"] & {job["JobId"] for job in completed}
    assert len(seen) >= 0.5 * len(completed)  # squeue polls every 2 s; a short job may slip between two polls
    assert slurm_study["most_running"] >= 8  # the 12-CPU node ran 8 or more one-thread jobs at once


def test_the_slurm_report_is_the_local_one(slurm_study, study):
    local, _ = study
    remote = slurm_study["out"]
    for table in ("accuracy.csv", "claims.csv"):
        assert (remote / "figures" / table).read_text() == (local / "figures" / table).read_text(), table
    for mean in sorted(local.glob("cifar10/*/scores/*/*/mean.csv")):
        pd.testing.assert_frame_equal(pd.read_csv(remote / mean.relative_to(local)), pd.read_csv(mean))


def test_the_server_has_one_finished_run_per_job(slurm_study):
    client = MlflowClient(slurm_study["uri"])
    runs = study_run.job_runs(client, client.get_experiment_by_name("tiny").experiment_id)
    planned = [job for job in planned_jobs(slurm_study["overrides"]) if job.rule not in UNTRACKED]
    assert len(runs) == len(planned)  # none lost
    assert len({job_key(r) for r in runs}) == len(runs)  # none twice
    assert {r.info.status for r in runs} == {"FINISHED"}  # none left RUNNING
    assert max_overlap(runs) >= 8
    artifacts = client.list_artifacts(next(r for r in runs if r.data.tags["rule"] == "retrain").info.run_id)
    assert "subset.json" in {a.path for a in artifacts}  # artifacts went to the server


def test_a_training_job_requeued_by_slurm_resumes_and_ends_as_an_uninterrupted_one(cluster, mlflow_server, tmp_path):
    """Preemption for real: `scontrol requeue` of a running scoring-training job (Slurm stops it with
    SIGTERM and starts its batch script again); the workflow finishes, the job resumed from its saved
    state in the MLflow run it had started, and its outputs equal those of the same job run locally
    without a stop."""
    config = {
        "study": "requeue",
        "noise": {"levels": [0.0], "methods": []},
        "scores": {"seeds": 1},
        "experiments": {"lmc": {"parents": 1}},  # the parents are scoring runs
        "train": {"epochs": 20},
    }
    local = write_overrides(
        tmp_path, **yaml.safe_load(study_overrides(tmp_path, tmp_path / "local").read_text()), **config
    )
    job_dir = Path("requeue/cifar10/resnet18/scoring/noise0.0/seed0")
    run_snakemake(local, targets=[tmp_path / "local" / job_dir / "result.json"])
    overrides = write_overrides(
        tmp_path, **{**yaml.safe_load(local.read_text()), "results_dir": str(tmp_path / "slurm")}
    )
    with open(tmp_path / "snakemake.log", "w") as log:
        # The training state saved at every epoch (not every 600 s): the job has one to resume from early.
        target = tmp_path / "slurm" / job_dir / "result.json"
        run = on_slurm(overrides, mlflow_server, log, [target], env={STATE_EVERY_VARIABLE: "0"})
    state = tmp_path / "slurm" / job_dir / "work" / "state.pt"
    while not state.exists():  # the job trains and has saved its state once
        assert run.poll() is None, (tmp_path / "snakemake.log").read_text()[-5000:]
        time.sleep(0.2)
    queue = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i"], capture_output=True, text=True).stdout
    (job_id,) = queue.split()
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    assert run.wait(timeout=600) == 0, (tmp_path / "snakemake.log").read_text()[-5000:]

    ends = [job["JobState"] for job in cluster.completed if job["JobId"] == job_id]
    assert ends[0] != "COMPLETED" and ends[-1] == "COMPLETED", ends  # stopped once, then ran to its end
    train_log = next((tmp_path / "slurm" / "requeue" / "logs").rglob("train_scoring/noise0.0/seed0.log")).read_text()
    assert "resuming from" in train_log, train_log
    for name in ("ckpt_e0.pt", "ckpt_e1.pt", "ckpt_e2.pt"):
        expected = torch.load(tmp_path / "local" / job_dir / name)["model"]
        got = torch.load(tmp_path / "slurm" / job_dir / name)["model"]
        assert all(torch.equal(expected[key], got[key]) for key in expected), name
    for score in ("forgetting", "aum"):
        scores = Path(f"requeue/cifar10/resnet18/scores/noise0.0/{score}/seed0.csv")
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / "slurm" / scores), pd.read_csv(tmp_path / "local" / scores)
        )
    client = MlflowClient(mlflow_server)
    tries = client.search_runs(
        [client.get_experiment_by_name("requeue").experiment_id],
        f"tags.output = '{tmp_path / 'slurm' / job_dir / 'result.json'}'",
        order_by=["start_time"],
    )
    (run,) = tries  # the requeued job went on in the run of its first start
    assert run.info.status == "FINISHED"
    epochs = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert sorted(epochs) == sorted(set(epochs)) and len(epochs) == 20  # the curve goes on: no epoch twice
