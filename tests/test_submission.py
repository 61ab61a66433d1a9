"""What a Slurm cluster is asked for: `snakemake --profile profiles/slurm` with a fake `sbatch` (and the
other Slurm commands the executor plugin runs) first on PATH gives the exact sbatch call of a training, a
scoring and a light job; jobs that ask for a GPU without a partition stop the run with one clear error."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

import slurm_cluster
from datadiet.study import cluster, config as study_config, layout
from paths import CIFAR, ROOT
from studies import run_snakemake, synthetic_jpeg_tar, write_overrides

# Each kind of job asks for something else: GPUs by model (train) or as a gres (score), the account of
# the whole cluster or a job's own, a QoS, a node feature, CPUs per GPU and extra sbatch options.
CLUSTER = {
    "gpu_partition": "gpu",
    "partition": "cpu",
    "account": "proj",
    "jobs": {
        "train": {"gpus": 1, "gpu_model": "a100", "mem_mb": 16000, "runtime": 30, "qos": "high",
                  "slurm_extra": "--signal=B:USR1@300"},
        "score": {"gres": "gpu:1", "constraint": "gpu80g", "cpus_per_gpu": 2, "mem_mb": 8000, "runtime": 10,
                  "account": "proj-gpu"},
        "light": {"mem_mb": 2000, "runtime": 5},
    },
}  # fmt: skip
# The sbatch call of a job of each kind (threads: 1), its run name, log and working directory shown as
# <run>, <log> and <workdir> (each checked on its own), the command it wraps left out.
EXPECTED = {
    "prepare_data": "--parsable --job-name <run> --output <log> --export=ALL"
    " --comment rule_prepare_data_wildcards_cifar10 -A proj -p cpu -t 5 --mem 2000 --requeue --ntasks=1"
    " --cpus-per-task=1 -D <workdir>",
    "train_scoring": "--parsable --job-name <run> --output <log> --export=ALL"
    " --comment rule_train_scoring_wildcards_cifar10_resnet18_0.0_1 -A proj -p gpu -t 30 --qos=high --mem 16000"
    " --requeue --cpus-per-task=1 --signal=B:USR1@300 -D <workdir> --gpus=a100:1",
    "score": "--parsable --job-name <run> --output <log> --export=ALL"
    " --comment rule_score_wildcards_cifar10_resnet18_0.0_0 -A proj-gpu -p gpu -t 10 -C gpu80g --mem 8000"
    " --requeue --cpus-per-gpu=2 -D <workdir> --gres=gpu:1",
}
SHUTDOWN_S = 200  # the longest a SIGINT'd Snakemake may take to exit: the plugin's 180 s cap, and its own teardown
ACCOUNTS = ("proj", "proj-gpu")  # the fake cluster's (`sacctmgr list user`): the plugin checks a job's account


def fake_slurm(folder):
    """Slurm's commands as the plugin calls them, in `folder`/bin: sbatch records its arguments (a line of
    JSON in `folder`/sbatch.jsonl) and prints a job id, squeue shows every job pending, sacct finds no
    accounting. Returns the bin folder and the record."""
    bin_dir, record = folder / "bin", folder / "sbatch.jsonl"
    bin_dir.mkdir(parents=True)
    python = f"#!{sys.executable}\nimport json, os, sys\n"
    scripts = {
        "sbatch": f"{python}with open({str(record)!r}, 'a') as f:\n"
        "    f.write(json.dumps([os.getpid(), sys.argv[1:]]) + '\\n')\nprint(os.getpid())\n",
        "squeue": f"{python}for line in open({str(record)!r}):\n    print(f'{{json.loads(line)[0]}}|PENDING')\n",
        "scontrol": "#!/bin/sh\necho 'MinJobAge = 300 sec'\n",  # `scontrol show config`
        "sinfo": "#!/bin/sh\nprintf 'PARTITION\\ncpu*\\ngpu\\n'\n",
        "sacctmgr": f"#!/bin/sh\nprintf '%s\\n' {' '.join(ACCOUNTS)}\n",
        "sacct": "#!/bin/sh\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n",
        "sshare": "#!/bin/sh\n",
        "scancel": "#!/bin/sh\n",
    }
    for name, script in scripts.items():
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    return bin_dir, record


def submitted(record):
    """The argument lists of the sbatch calls so far."""
    return [argv for _, argv in map(json.loads, record.read_text().splitlines())] if record.exists() else []


def stoppable_by_sigint():
    """In the child, before Snakemake starts: SIGINT as a shell gives it. A child inherits an ignored or
    blocked SIGINT from this process, and the full suite's Snakemake once ran on past SIGINT here."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def on_fake_slurm(folder, overrides, workdir, targets=(), calls=1, options=()):
    """`snakemake --profile profiles/slurm` (and `options`) in `workdir` with the fake Slurm on PATH,
    stopped (SIGINT: it cancels its jobs and unlocks) once `calls` sbatch calls are recorded, unless it
    ended before. Returns its exit code, its output and the argument lists of the sbatch calls."""
    bin_dir, record = fake_slurm(folder)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{bin_dir}:{os.path.dirname(sys.executable)}:{env['PATH']}"
    cmd = [sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", *slurm_cluster.SNAKEMAKE_OPTIONS, *options]
    cmd += [*map(str, targets), "--configfile", str(ROOT / "config.yaml"), str(overrides), "--directory", str(workdir)]
    with open(folder / "snakemake.log", "w") as log:
        run = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=stoppable_by_sigint
        )
        try:
            deadline = time.time() + 120
            while run.poll() is None and len(submitted(record)) < calls and time.time() < deadline:
                time.sleep(0.2)
            if run.poll() is None:
                run.send_signal(signal.SIGINT)
            # Snakemake exits once the executor's status thread wakes: it sleeps between squeue checks for
            # as long as the plugin's cap, 180 s (snakemake_executor_plugin_slurm's max_sleep_time).
            returncode = run.wait(timeout=SHUTDOWN_S)
        except subprocess.TimeoutExpired:
            disposition = signal.getsignal(signal.SIGINT), signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
            tail = (folder / "snakemake.log").read_text()[-3000:]
            pytest.fail(
                f"Snakemake ran on {SHUTDOWN_S} s after SIGINT (this process's SIGINT, blocked: {disposition}):\n{tail}"
            )
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    return returncode, (folder / "snakemake.log").read_text(), submitted(record)


def sbatch_call(argv, workdir):
    """An sbatch call as one line, checked and shown as EXPECTED shows it."""
    *options, wrap = argv
    assert wrap.startswith("--wrap=") and "--target-jobs" in wrap, wrap  # the job's step, inside Slurm
    values = {}
    for flag, placeholder in {"--job-name": "<run>", "--output": "<log>", "-D": "<workdir>"}.items():
        at = options.index(flag) + 1
        values[flag], options[at] = options[at], placeholder
    assert values["--job-name"].startswith("datadiet_"), values  # the profile's job-name prefix
    assert values["--output"].startswith(f"{workdir}/.snakemake/slurm_logs/"), values
    assert values["-D"] == str(workdir), values
    return " ".join(options)


def rule_of(argv):
    return argv[argv.index("--comment") + 1].removeprefix("rule_").split("_wildcards_")[0]


@pytest.fixture
def overrides(tmp_path):
    """The tiny preset, for runs in a working directory of their own (so its data by absolute path), with
    its own study and results folder, the cluster above, and no LMC (so every clean scoring run is a
    train_scoring job)."""
    source = CIFAR if CIFAR.exists() else synthetic_jpeg_tar(tmp_path / "synthetic.tar.gz")
    own = {
        "study": "submission",
        "results_dir": str(tmp_path / "results"),
        "datasets": {"cifar10": {"path": str(source)}},
        "experiments": {"lmc": {"activate": False}},
        "cluster": CLUSTER,
    }
    tiny = yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text())
    return write_overrides(tmp_path, **study_config.merge(tiny, own))


def run_locally(overrides, workdir, *args, targets=()):
    return run_snakemake(overrides, "--directory", str(workdir), *args, targets=targets, preset=ROOT / "config.yaml")


def test_a_training_a_scoring_and_a_light_job_are_submitted_as_the_config_asks(tmp_path, overrides):
    workdir, study = tmp_path / "work", study_config.load(overrides)
    scoring = study.path(layout.SCORING, dataset="cifar10", arch="resnet18", noise=0.0) + "/result.json"
    # A light job: the first of a fresh study.
    _, log, first = on_fake_slurm(
        tmp_path / "first", overrides, workdir, [study.path(layout.DATASET, dataset="cifar10")]
    )
    assert len(first) == 1, log[-5000:]
    # A training and a scoring job: scoring run 0 and what it needs made here first (a local run, which
    # ignores the cluster's resources), then a second scoring run and the scores from run 0.
    run_locally(overrides, workdir, targets=[scoring.format(seed=0)])
    score = study.path(layout.SEED_SCORES, dataset="cifar10", arch="resnet18", noise=0.0, score="grand_e0", seed=0)
    _, log, second = on_fake_slurm(tmp_path / "second", overrides, workdir, [scoring.format(seed=1), score], calls=2)
    assert {rule_of(argv): sbatch_call(argv, workdir) for argv in first + second} == EXPECTED, log[-5000:]


def test_jobs_that_ask_for_a_gpu_without_a_partition_stop_a_slurm_run_before_any_submission(tmp_path, overrides):
    config = yaml.safe_load(overrides.read_text())
    config["cluster"]["gpu_partition"] = None
    unset = write_overrides(tmp_path, **config)
    returncode, log, calls = on_fake_slurm(tmp_path / "slurm", unset, tmp_path / "work")
    assert returncode == 1 and calls == [], log[-5000:]
    assert "cluster.gpu_partition is not set, and jobs of kind score, train ask for a GPU" in log, log[-5000:]
    run_locally(unset, tmp_path / "work", "-n")  # locally nothing needs a partition
    # Nor where the plugin picks each job's partition from the cluster's (--slurm-partition-config).
    partitions = tmp_path / "partitions.yaml"
    partitions.write_text(yaml.safe_dump({"partitions": {"cpu": {}, "gpu": {"max_gpu": 4}}}))
    options = ["--slurm-partition-config", str(partitions)]
    _, log, calls = on_fake_slurm(tmp_path / "picked", unset, tmp_path / "work", options=options)
    assert [rule_of(argv) for argv in calls] == ["prepare_data"], log[-5000:]


def test_a_job_partition_stands_for_gpu_partition_and_gpus_are_asked_for_one_way():
    section = study_config.validate(yaml.safe_load((ROOT / "config.yaml").read_text()) | {"cluster": CLUSTER})[
        "cluster"
    ]
    unset = {**section, "gpu_partition": None}
    with pytest.raises(study_config.ConfigError, match="cluster.gpu_partition is not set"):
        cluster.check_gpu_partition(unset)
    own = {**unset, "jobs": {kind: {**job, "partition": f"gpu-{kind}"} for kind, job in unset["jobs"].items()}}
    cluster.check_gpu_partition(own)
    assert cluster.resources(own, "train")["slurm_partition"] == "gpu-train"
    twice = {**section, "jobs": {"score": {**section["jobs"]["score"], "gpus": 1}}}
    with pytest.raises(study_config.ConfigError, match="cluster.jobs.score: GPUs as gres"):
        cluster.resources(twice, "score")
