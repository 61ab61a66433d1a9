"""Faults a job meets on a cluster, each through the command its rule runs: a stop at any moment of
its life (SIGTERM: preemption, a time limit, a cancelled workflow; SIGUSR1: Slurm's warning before the
time limit) or a kill outright (SIGKILL, a node failure), then the same command again, which resumes
the saved training in the same MLflow run; a diverging loss; bad inputs."""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient
from torchvision.io import encode_jpeg

from benchmarks.startup import SPEC, job_files as make_files, train_scoring_command
from datadiet.models import checkpoint, init_model
from datadiet.runtime import files, hardware
from datadiet.runtime.hardware import device

pytestmark = pytest.mark.usefixtures("own_module_store")


@pytest.fixture
def study_files(tmp_path):
    return tmp_path, make_files(tmp_path)


# What the train_scoring rule declares (Snakemake deletes them when the job fails), result.json last.
OUTPUTS = ("ckpt_e0.pt", "ckpt_e2.pt", "ckpt_e6.pt", "forgetting.csv", "aum.csv", "result.json")


def train_scoring(tmp, uri, out, spec=SPEC, env=None):
    """The command of the train_scoring rule, as a process (stdout and stderr in out.log)."""
    cmd = train_scoring_command(tmp, out, spec)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "out.log", "a") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})


def runs(uri, out=None):
    """The runs of the store (of the job writing to `out`), oldest first."""
    client = MlflowClient(uri)
    found = client.search_runs([client.get_experiment_by_name("faults").experiment_id], order_by=["start_time"])
    return [r for r in found if out is None or r.data.tags["output"] == str(out / "result.json")]


def curve(uri, run):
    """(step, value) of a run's train loss as it was logged, in time order."""
    logged = MlflowClient(uri).get_metric_history(run.info.run_id, "train_loss")
    return [(m.step, m.value) for m in sorted(logged, key=lambda m: (m.timestamp, m.step))]


def assert_whole_curve(uri, run, whole_out):
    """The run's curve is the uninterrupted job's: every epoch once, in order, with its values."""
    (whole,) = runs(uri, whole_out)
    assert curve(uri, run) == curve(uri, whole) and [step for step, _ in curve(uri, run)] == [1, 2, 3, 4, 5, 6]


@pytest.fixture(scope="module")
def whole(tmp_path_factory, own_module_store):
    """The study files, and one uninterrupted train_scoring job: its outputs and how long it took."""
    tmp = tmp_path_factory.mktemp("stops")
    uri = make_files(tmp)
    start = time.time()
    assert train_scoring(tmp, uri, tmp / "whole").wait() == 0
    return tmp, uri, time.time() - start


def wait_until(ready, job, log):
    """Poll `ready()` every 20 ms until it holds; fail, showing the job's `log`, if the job ends first."""
    while not ready():
        assert job.poll() is None, log.read_text()
        time.sleep(0.02)


def handles_sigterm(pid):
    """Whether the process has a handler for SIGTERM (its SigCgt mask in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


def stop_then_rerun(whole, name, stop_at=None, after=None):
    """A train_scoring job stopped at the point `stop_at` (it sends itself SIGTERM there) or `after`
    seconds from its start; checks what it leaves, then reruns it as Snakemake would (its declared
    outputs deleted if it failed) and checks that the rerun gives the uninterrupted job's outputs.
    Returns (exit code, statuses of its runs before the rerun, the rerun's log)."""
    tmp, uri, _ = whole
    out = tmp / name
    job = train_scoring(tmp, uri, out, env={"DATADIET_STOP_AT": stop_at} if stop_at else None)
    handled = None
    if after is not None:
        time.sleep(after)
        handled = handles_sigterm(job.pid)
        job.send_signal(signal.SIGTERM)
    code = job.wait()
    log = (out / "out.log").read_text()
    first_try = runs(uri, out)
    statuses = [r.info.status for r in first_try]
    assert "Traceback" not in log, log
    assert not list(out.rglob(".*.tmp*")), "a half-written file was left behind"
    if (out / "result.json").exists():  # written last: everything else is there
        assert all((out / name).exists() for name in OUTPUTS), log
    if code == -signal.SIGTERM:  # only before the handler exists: the job has done nothing
        assert handled is False and statuses == [] and not any((out / name).exists() for name in OUTPUTS), log
    elif code == 130:
        assert log.count("datadiet job train-scoring: stopped by signal 15; the same command resumes") == 1, log
        assert set(statuses) <= {"KILLED"} and len(statuses) <= 1, statuses
    else:
        assert code == 0 and statuses == ["FINISHED"], (code, statuses, log)
    if code != 0:
        for name in OUTPUTS:
            (out / name).unlink(missing_ok=True)
    (out / "out.log").write_text("")
    assert train_scoring(tmp, uri, out).wait() == 0, (out / "out.log").read_text()
    rerun_log = (out / "out.log").read_text()
    assert_same_outputs(tmp / "whole", out)
    assert not (out / "work").exists()
    *earlier, last = runs(uri, out)
    assert last.info.status == "FINISHED" and files.read_json(out / "result.json")["run_id"] == last.info.run_id
    for run in earlier:  # each earlier try of the job is ended and names the run that replaced it
        assert run.info.status != "RUNNING" and run.data.tags["replaced_by"] == last.info.run_id
    if "resuming from" in rerun_log:  # the rerun went on in the run of the try that saved the state
        assert earlier == [] and [r.info.run_id for r in first_try] == [last.info.run_id]
    assert_whole_curve(uri, last, tmp / "whole")
    return code, statuses, rerun_log


def assert_same_outputs(whole, out):
    for name in OUTPUTS[:3]:
        expected, got = torch.load(whole / name), torch.load(out / name)
        for key, tensor in expected["model"].items():
            assert torch.equal(tensor, got["model"][key]), (name, key)
    for score in ("forgetting.csv", "aum.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(out / score), pd.read_csv(whole / score))


# Points across a job's life (see stop.point), the exit code a stop there gives, the statuses of the
# job's MLflow runs it leaves, and whether the rerun resumes from a saved training state (then in the
# same run). The state is saved every 600 s (none in a job this short), at the end and on a stop.
STOP_POINTS = [
    ("imports", 130, [], False),  # before datadiet.tools.cli (torch) and the job (MLflow) are imported
    ("run:start", 130, [], False),  # the MLflow run is about to start: none is left
    ("run:started", 130, ["KILLED"], False),
    ("write:run.json", 130, ["KILLED"], False),  # the run's id, beside the state to come
    ("write:ckpt_e2.pt", 130, ["KILLED"], True),  # mid-training: the stop saves the state of epoch 1
    ("write:state.pt", 130, ["KILLED"], True),  # the save at the end, cut short: the stop saves it again
    ("written:ckpt_e6.pt", 130, ["KILLED"], True),  # the last epoch: its checkpoint is written, not renamed
    ("write:aum.csv", 130, ["KILLED"], True),  # training done, checkpoints and forgetting written
    ("write:result.json", 130, ["KILLED"], True),
    ("written:result.json", 130, ["KILLED"], True),
    ("run:end", 0, ["FINISHED"], False),  # result.json is written: the job finishes, and exits 0
]


def in_pairs(function, cases):
    """function(*case) for every case, two jobs at a time (one thread each, as the rules run them)."""
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda case: function(*case), cases))


def test_a_stop_at_each_point_of_a_job_ends_it_cleanly_and_the_rerun_is_exact(whole):
    got = in_pairs(
        lambda point: stop_then_rerun(whole, f"at-{point.replace(':', '-')}", stop_at=point),
        [(point,) for point, *_ in STOP_POINTS],
    )
    for (point, code, statuses, resumes), (got_code, got_statuses, log) in zip(STOP_POINTS, got):
        assert (got_code, got_statuses) == (code, statuses), point
        assert ("resuming from" in log) == resumes, (point, log)


def test_sigterm_at_moments_across_a_job_s_whole_life_ends_it_cleanly_and_the_rerun_is_exact(whole):
    """Signals from outside at 8 moments, from the process's start to past the end of an
    uninterrupted job; stop_then_rerun checks each."""
    moments = [whole[2] * i / 7 * 1.05 for i in range(8)]
    got = in_pairs(lambda i, after: stop_then_rerun(whole, f"after-{i}", after=after), enumerate(moments))
    codes = [code for code, _, _ in got]
    assert codes[1] == 130 and codes[-1] in (0, 130), codes  # 1 s in is inside the imports


def test_a_job_killed_outright_mid_training_goes_on_in_its_run_when_it_runs_again(whole):
    tmp, uri, _ = whole
    out = tmp / "sigkill"
    job = train_scoring(tmp, uri, out, env={"DATADIET_STATE_EVERY_S": "0"})  # a save at every report
    wait_until(lambda: (out / "work" / "state.pt").exists(), job, out / "out.log")
    job.kill()  # SIGKILL: no chance to end its MLflow run, nor to save the state
    assert job.wait() == -signal.SIGKILL
    (stale,) = runs(uri, out)
    assert stale.info.status == "RUNNING"
    assert train_scoring(tmp, uri, out).wait() == 0
    assert "resuming from" in (out / "out.log").read_text()
    assert_same_outputs(tmp / "whole", out)
    (rerun,) = runs(uri, out)
    assert rerun.info.run_id == stale.info.run_id and rerun.info.status == "FINISHED"
    assert_whole_curve(uri, rerun, tmp / "whole")  # epochs logged after the last save are not logged again


def test_slurm_s_warning_signal_saves_the_state_and_the_rerun_goes_on_in_the_same_run(whole):
    """SIGUSR1 (`--signal=USR1@300`: 5 minutes before the time limit) mid-training, where the 600 s
    interval has saved nothing yet: the job saves its state and stops; the rerun resumes it in its run."""
    tmp, uri, _ = whole
    out = tmp / "usr1"
    job = train_scoring(tmp, uri, out)
    wait_until(lambda: "epoch 2/6" in (out / "out.log").read_text(), job, out / "out.log")
    assert not (out / "work" / "state.pt").exists()
    job.send_signal(signal.SIGUSR1)
    assert job.wait() == 130
    assert "stopped by signal 10; the same command resumes" in (out / "out.log").read_text()
    assert (out / "work" / "state.pt").exists()
    (stopped,) = runs(uri, out)
    assert stopped.info.status == "KILLED"
    assert train_scoring(tmp, uri, out).wait() == 0
    assert "resuming from" in (out / "out.log").read_text()
    assert_same_outputs(tmp / "whole", out)
    (run,) = runs(uri, out)
    assert run.info.run_id == stopped.info.run_id == files.read_json(out / "result.json")["run_id"]
    assert run.info.status == "FINISHED"
    assert_whole_curve(uri, run, tmp / "whole")


RANDOM_HALF = {
    "dataset": "synthetic",
    "keep": 0.5,
    "method": "random",
    "model": {"arch": "resnet18", "width": 2, "init": "flax"},
    "noise": 0.0,
    "selection": {"kind": "random"},
    "study": "faults",
    "train": SPEC["train"],
}


def test_a_job_of_several_runs_stopped_in_its_second_keeps_the_first_and_resumes_the_second(study_files):
    """A retraining job trains its repeats one after another. The end of the first run is not the end of
    the job: a stop during the second still ends it (its run KILLED, its state saved); were it the end,
    the second would ignore SIGTERM and Slurm would kill it outright. Its next try, after Snakemake has
    deleted the failed job's outputs, takes the first run as that try finished it and resumes the
    second in its run."""
    tmp, uri = study_files
    out = [tmp / "retrain" / f"rep{rep}" for rep in (0, 1)]
    specs = [{**RANDOM_HALF, "run": rep} for rep in (0, 1)]
    cmd = [sys.executable, "-m", "datadiet", "job", "retrain", "--spec", json.dumps(specs), "--rule", "retrain"]
    cmd += ["--tracked", tmp / "store.json", "--dataset", tmp / "dataset.pt", "--labels", tmp / "labels.pt"]
    cmd = [*map(str, cmd), "--out-dir", *map(str, out)]
    with open(tmp / "out.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: (tmp / "out.log").read_text().count("epoch 4/") >= 2, proc, tmp / "out.log")  # 2nd run
        proc.send_signal(signal.SIGTERM)
        assert proc.wait() == 130, (tmp / "out.log").read_text()
    assert not (out[1] / "result.json").exists() and (out[1] / "work" / "state.pt").exists(), (
        tmp / "out.log"
    ).read_text()
    first, second = runs(uri)
    assert first.data.tags["wildcard.rep"] == "0" and first.info.status == "FINISHED"
    assert second.data.tags["wildcard.rep"] == "1" and second.info.status == "KILLED"
    kept = (out[0] / "result.json").read_text()
    for rep in out:  # what Snakemake does to a failed job's declared outputs
        for name in ("result.json", "subset.json"):
            (rep / name).unlink(missing_ok=True)
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"{out[0]}: finished by an earlier try of this job, kept" in again.stdout
    assert again.stdout.count("resuming from") == 1
    assert (out[0] / "result.json").read_text() == kept and (out[0] / "subset.json").exists()
    assert [r.info.run_id for r in runs(uri)] == [first.info.run_id, second.info.run_id]
    assert files.read_json(out[1] / "result.json")["run_id"] == second.info.run_id
    assert {r.info.status for r in runs(uri)} == {"FINISHED"}
    assert not list((tmp / "retrain").glob("*.done")) and not (out[1] / "work").exists()


def test_a_diverging_loss_fails_the_run_and_leaves_no_output(study_files):
    tmp, uri = study_files
    out = tmp / "diverged"
    job = train_scoring(tmp, uri, out, {**SPEC, "train": {**SPEC["train"], "lr": 1e12}})
    assert job.wait() == 1
    log = (out / "out.log").read_text()
    assert "training diverged" in log and "Traceback" not in log
    assert [r.info.status for r in runs(uri)] == ["FAILED"]
    assert not any(out.glob("*.csv")) and not (out / "result.json").exists()


def datadiet(*args):
    return subprocess.run([sys.executable, "-m", "datadiet", *map(str, args)], capture_output=True, text=True)


def job(tmp, step, spec, **files):
    """A tracked job step on the files of job_files(tmp), with more files as options (out_dir: --out-dir);
    `spec`: a list for a step that makes several runs (one each)."""
    options = [item for name, path in files.items() for item in (f"--{name.replace('_', '-')}", path)]
    common = ["--tracked", tmp / "store.json", "--dataset", tmp / "dataset.pt", "--labels", tmp / "labels.pt"]
    return datadiet("job", step, "--spec", json.dumps(spec), *common, *options)


def test_a_checkpoint_of_another_architecture_is_named(study_files):
    tmp, uri = study_files
    files.save_tensors(checkpoint(init_model("resnet50", 3, 2, 0), "resnet50", 2, 3, 0), tmp / "ckpt.pt")
    files.write_json({"run_id": "x"}, tmp / "result.json")
    spec = {
        "kind": "el2n",
        "epoch": 0,
        "arch": "resnet18",
        "dataset": "synthetic",
        "noise": 0.0,
        "run": 0,
        "grand_chunk_size": 8,
    }
    proc = job(tmp, "score", [spec], checkpoint=tmp / "ckpt.pt", train_result=tmp / "result.json", out=tmp / "el2n.csv")
    assert proc.returncode == 1
    assert f"checkpoint {tmp / 'ckpt.pt'} is a resnet50, expected resnet18" in proc.stderr


def test_a_score_file_of_another_length_is_named(study_files):
    tmp, uri = study_files
    files.write_scores(tmp / "short.csv", torch.arange(100), torch.zeros(100), {"mean": torch.rand(100)}, {"runs": []})
    spec = {
        "dataset": "synthetic",
        "keep": 0.5,
        "method": "el2n_e2",
        "model": {"arch": "resnet18", "width": 2},
        "noise": 0.0,
        "run": 0,
        "selection": {"kind": "keep_max"},
        "study": "faults",
        "train": SPEC["train"],
    }
    proc = job(tmp, "retrain", [spec], scores=tmp / "short.csv", out_dir=tmp / "retrain")
    assert proc.returncode == 1
    assert f"score file {tmp / 'short.csv'} has 100 rows but the training set has 192 examples" in proc.stderr


@pytest.mark.parametrize("damage", ["missing", "truncated", "corrupt"])
def test_a_bad_dataset_file_is_named(study_files, damage):
    tmp, uri = study_files
    path = tmp / "dataset.pt"
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    else:
        path.write_bytes(b"not a torch file" * 100)
    proc = datadiet(
        "job", "corrupt-labels", "--dataset", path, "--fraction", 0.1, "--seed", 0, "--out", tmp / "noisy.pt"
    )
    assert proc.returncode == 1
    assert str(path) in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp / "noisy.pt").exists()


def test_an_image_folder_with_another_class_count_than_the_config_is_named(tmp_path):
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            (tmp_path / "images" / split / label).mkdir(parents=True)
            image = torch.full((3, 32, 32), 60 if label == "cat" else 200, dtype=torch.uint8)
            (tmp_path / "images" / split / label / "0.jpg").write_bytes(encode_jpeg(image).numpy().tobytes())
    spec = {
        "name": "mine",
        "source": "imagefolder",
        "path": str(tmp_path / "images"),
        "num_classes": 3,
        "image_size": 32,
        "download": False,
        "merge_valid": False,
    }
    proc = datadiet(
        "job",
        "prepare-data",
        "--spec",
        json.dumps(spec),
        "--cache",
        tmp_path / "cache",
        "--out",
        tmp_path / "dataset.pt",
    )
    assert proc.returncode == 1
    assert f"{tmp_path / 'images'} has 2 classes, the config says num_classes=3" in proc.stderr
    assert not (tmp_path / "dataset.pt").exists()


@pytest.fixture
def no_gpu_given(monkeypatch):
    """No GPU from a scheduler in the environment, whatever the shell running the tests has."""
    for name in list(os.environ):
        if name == "CUDA_VISIBLE_DEVICES" or name.startswith("SLURM_") and "GPUS" in name:
            monkeypatch.delenv(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a machine without a GPU says")
def test_device_cuda_without_a_gpu_is_one_clear_error(no_gpu_given):
    with pytest.raises(ValueError, match="device: cuda, but torch sees no GPU"):
        device(1, "cuda")
    assert device(1, "auto") == torch.device("cpu")


@pytest.mark.parametrize("variable, value", [("CUDA_VISIBLE_DEVICES", "0"), ("SLURM_GPUS_ON_NODE", "1")])
def test_a_gpu_given_that_torch_cannot_use_names_the_driver_and_the_torch_build(
    no_gpu_given, monkeypatch, variable, value
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as with a driver too old for the build
    monkeypatch.setenv(variable, value)
    driver = hardware.driver_version()
    for name in ("auto", "cuda"):
        with pytest.raises(ValueError) as error:
            device(1, name)
        message = str(error.value)
        assert f"given a GPU ({variable}={value}), but torch cannot use it" in message
        assert (f"NVIDIA driver {driver}" if driver else "no NVIDIA driver found") in message
        assert f"torch {torch.__version__}" in message
        assert (f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build") in message
        assert "make setup TORCH_INDEX=" in message
    assert device(1, "cpu") == torch.device("cpu")  # asked for: no GPU needed


def test_auto_takes_the_cpu_where_no_gpu_was_given(no_gpu_given, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device(1, "auto") == torch.device("cpu")
    monkeypatch.setenv("SLURM_GPUS_ON_NODE", "0")
    for hidden in ("", "-1", "NoDevFiles"):  # Slurm writes NoDevFiles for a job it gave no GPU
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert device(1, "auto") == torch.device("cpu")


@pytest.mark.parametrize(
    "environ, grant",
    [
        ({"SLURM_JOB_ID": "7", "SLURM_CPUS_ON_NODE": "4", "CUDA_VISIBLE_DEVICES": "NoDevFiles"}, None),
        ({"SLURM_GPUS": "0", "CUDA_VISIBLE_DEVICES": "-1"}, None),
        ({"SLURM_JOB_GPUS": "0"}, "SLURM_JOB_GPUS=0"),  # a device id, not a count
        ({"SLURM_STEP_GPUS": "2,3"}, "SLURM_STEP_GPUS=2,3"),
        ({"SLURM_GPUS_PER_NODE": "a100:2"}, "SLURM_GPUS_PER_NODE=a100:2"),
        ({"CUDA_VISIBLE_DEVICES": "GPU-5e3a9c2b"}, "CUDA_VISIBLE_DEVICES=GPU-5e3a9c2b"),
    ],
)
def test_gpu_grant_reads_slurm_and_cuda_visible_devices(environ, grant):
    assert hardware.gpu_grant(environ) == grant


def test_the_driver_version_is_read_from_the_kernel_module():
    assert hardware.module_version("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 2023") == (
        "535.104.05"
    )
    opened = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build  (dvs-builder@U16)\n"
    assert hardware.module_version(opened + "GCC version:  gcc version 13.3.0") == "580.65.06"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a machine without a usable GPU says")
def test_a_job_given_a_gpu_torch_cannot_use_stops_with_one_line_before_its_run(study_files):
    tmp, uri = study_files
    out = tmp / "given"
    assert train_scoring(tmp, uri, out, env={"CUDA_VISIBLE_DEVICES": "0"}).wait() == 1
    log = (out / "out.log").read_text()
    assert "error: this job was given a GPU (CUDA_VISIBLE_DEVICES=0), but torch cannot use it" in log
    assert "Traceback" not in log and runs(uri) == [] and not any(out.glob("*.pt"))
