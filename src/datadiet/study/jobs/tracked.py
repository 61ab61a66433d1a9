"""What every tracked job of the study shares: where it runs, its data, its MLflow run and, for a training
job, the run from the first step to result.json.

A job is what its spec says (the hyperparameters, logged as MLflow params); where it runs comes from
its options (threads, device) and the tracking store (MLFLOW_TRACKING_URI, else --tracked), logged
as tags.

A training job saves its resumable state (90-190 MB, on a shared file system) every
DATADIET_STATE_EVERY_S seconds (default 600; 0: at every report) and when it is stopped; the try that
resumes from it goes on in the same MLflow run, whose id waits beside it in work/run.json.
"""

import os
import shutil
import time
from pathlib import Path

import torch

from ...models import checkpoint, init_model
from ...recipe import epoch_count, run_seeds, total_steps
from ...resume import resumes, run_key
from ...runtime import files, hardware, tracking
from ...runtime.progress import PrintProgress
from ...train import Callback, Hooks, TrainConfig, TrainSet, evaluate, train
from .. import names

STATE_EVERY_VARIABLE = "DATADIET_STATE_EVERY_S"
STATE_EVERY_S = 600  # a stop saves the state too: a time limit or a preemption loses little in between
RUN_FILE = "run.json"  # in work/: the MLflow run of the try that saved work/state.pt


def load_data(args):
    """The study's dataset file and the (possibly noisy) training labels of this job."""
    dataset = files.load_tensors(args.dataset)
    labels = files.load_tensors(args.labels)["labels"]
    if len(labels) != len(dataset["train_labels"]):
        raise ValueError(
            f"labels file {args.labels} has {len(labels)} labels for "
            f"{len(dataset['train_labels'])} training examples in {args.dataset}"
        )
    return dataset, labels


def run(args, name, params, output, consumed=(), device="cpu", resume=None):
    """The MLflow run of a job, in the store and experiment its --tracked file names (MLFLOW_TRACKING_URI
    wins; an SQLite file is refused inside a Slurm job), tagged with its rule, wildcards, the runs it
    consumed and where it runs: the device (a job that picks none computes on the CPU), its name,
    capability and driver, and the torch build. On a GPU it samples the system's use (system metrics).
    `resume`: the run of an earlier try whose saved training state this one resumes."""
    store = files.read_json(args.tracked)
    uri = tracking.study_store(store["uri"])
    tags = {"rule": args.rule, "consumed_runs": ",".join(consumed), "threads": args.threads, "device": str(device)}
    tags.update({f"wildcard.{k}": v for k, v in args.wildcards.items()})
    tags.update(hardware.device_tags(torch.device(device)))
    on_gpu = torch.device(device).type == "cuda"
    return tracking.job_run(
        uri,
        store["experiment"],
        name,
        params,
        tags,
        output=output,
        ends_job=args.ends_job,
        resume=resume,
        system_metrics=on_gpu,
    )


def state_every_s():
    """Seconds between saves of a training job's resumable state: DATADIET_STATE_EVERY_S, else 600."""
    return float(os.environ.get(STATE_EVERY_VARIABLE, STATE_EVERY_S))


def subset_label(spec):
    """How a retraining run's subset was chosen, as its run and dataset names say it:
    `el2n@1 keep=0.5 rep=0` (a window: `left_out=` after keep)."""
    chosen_by = spec["selection"]
    left_out = f" left_out={chosen_by['left_out']}" if "left_out" in chosen_by else ""
    return f"{names.run_label(spec['method'])} keep={spec['keep']}{left_out} rep={spec['run']}"


class SaveCheckpoints(Callback):
    def __init__(self, out_dir, arch, width, num_classes):
        self.out_dir, self.arch, self.width, self.num_classes = Path(out_dir), arch, width, num_classes

    def on_checkpoint(self, epoch, model):
        files.save_tensors(
            checkpoint(model, self.arch, self.width, self.num_classes, epoch), self.out_dir / f"ckpt_e{epoch}.pt"
        )

    def on_state(self, epoch, state):
        # A spawn point of linear mode connectivity: the whole training state, optimizer included.
        extra = {"arch": self.arch, "width": self.width, "num_classes": self.num_classes}
        files.save_tensors({**state, **extra}, self.out_dir / f"state_e{epoch}.pt")


class Training:
    """One training run of a job on `subset` of the training set: model, schedule and seeds from the
    spec (run r has the official seeds of run r; `data_seed` overrides its data order)."""

    def __init__(self, args, spec, dataset, labels, subset, data_seed=None):
        self.args, self.spec, self.dataset, self.labels, self.subset = args, spec, dataset, labels, subset
        self.device = hardware.device(args.threads, args.device)
        self.cfg = TrainConfig(**{**spec["train"], "lr_milestones": tuple(spec["train"]["lr_milestones"])})
        self.seeds = run_seeds(spec["run"])
        if data_seed is not None:
            self.seeds["data"] = data_seed
        self.steps = total_steps(self.cfg, len(dataset["train_labels"]), len(subset))
        self.arch, self.width, self.init = spec["model"]["arch"], spec["model"]["width"], spec["model"]["init"]
        self.num_classes = len(dataset["classes"])
        self.test = (dataset["test_images"], dataset["test_labels"])

    def precision(self):
        """The arithmetic it trains in on this device: train.precision resolved (auto: where bf16 pays)."""
        return "bf16" if hardware.autocast_bf16(self.cfg.precision, self.device) else "fp32"

    def params(self):
        return {
            **self.spec,
            "seeds": self.seeds,
            "train_size": len(self.subset),
            "steps": self.steps,
            "trained_in": self.precision(),
        }

    def training_set_name(self):
        """What it trains on, as its MLflow dataset is named: the study's dataset and label noise, and
        for a subset chosen_by it was chosen."""
        spec = self.spec
        name = f"{spec['dataset']} noise={spec['noise']}"
        return name if "keep" not in spec else f"{name} {subset_label(spec)}"  # no keep: the whole set

    def run_key(self, trackers, start_state):
        """What `train` requires of a resume file to resume from it (train.run_key of this training)."""
        stop_epoch = self.spec.get("stop_epoch")
        return run_key(
            self.cfg, self.steps, self.seeds["data"], len(self.subset), trackers or {}, start_state, stop_epoch
        )

    def train(self, work, checkpoint_epochs=(), spawn_epochs=(), trackers=None, start_state=None):
        """The trained model; checkpoints and the resumable state go to `work`."""
        cfg, n = self.cfg, len(self.dataset["train_labels"])
        full_epoch = n // cfg.batch_size  # report as often as a full-data run
        model = init_model(self.arch, self.num_classes, self.width, self.seeds["model"], self.init).to(self.device)
        train_set = TrainSet(
            self.dataset["train_images"][self.subset],
            self.labels[self.subset],
            self.dataset["mean"],
            self.dataset["std"],
        )
        stop_epoch = self.spec.get("stop_epoch")
        epochs = epoch_count(self.steps, len(self.subset), cfg.batch_size)
        epochs = min(epochs, stop_epoch) if stop_epoch is not None else epochs
        hooks = Hooks(
            callbacks=(
                PrintProgress(epochs, self.steps, cfg.batch_size, full_epoch),
                tracking.LogMetrics(),
                SaveCheckpoints(work, self.arch, self.width, self.num_classes),
            ),
            checkpoint_epochs=tuple(checkpoint_epochs),
            spawn_epochs=tuple(spawn_epochs),
            test=self.test if cfg.test_curve else None,
            report_every=full_epoch,
            state_path=work / "state.pt",
            state_every_s=state_every_s(),
        )
        train(model, train_set, cfg, self.seeds["data"], self.steps, hooks, trackers, start_state, stop_epoch)
        return model

    def result(self, run_id, model, seconds):
        mean, std = self.dataset["mean"], self.dataset["std"]
        final = evaluate(model, *self.test, mean, std, tta=self.cfg.tta)
        # How well the run fit what it trained on: its subset, un-augmented, in eval mode.
        fit = evaluate(model, self.dataset["train_images"][self.subset], self.labels[self.subset], mean, std)
        tracking.log_metrics(
            {
                "final_test_accuracy": final["accuracy"],
                "final_test_loss": final["loss"],
                "final_train_accuracy": fit["accuracy"],
            }
        )
        spec = self.spec
        return {
            "run_id": run_id,
            "test_accuracy": final["accuracy"],
            "test_loss": final["loss"],
            "final_train_accuracy": fit["accuracy"],
            "train_size": len(self.subset),
            "steps": self.steps,
            "seconds": round(seconds, 2),
            "dataset": spec["dataset"],
            "arch": self.arch,
            "noise": spec["noise"],
            "run": spec["run"],
            "num_examples": len(self.dataset["train_labels"]),
            "trained_in": self.precision(),
        }


def run_training(
    training,
    name,
    out_dir,
    consumed=(),
    checkpoint_epochs=(),
    spawn_epochs=(),
    trackers=None,
    artifacts=(),
    start_state=None,
    outputs=None,
):
    """Train as one MLflow run and write the job's outputs: checkpoints (`checkpoint_epochs`) and full
    training states (`spawn_epochs`) in `out_dir`, then what `outputs(result, model)` writes (it returns more
    fields for the result), then result.json, the file that marks the job done, last. Returns the result.
    """
    # Checkpoints and the resumable state live in work/ until the job is done: Snakemake deletes the
    # declared outputs of a failed job, and a resumed run must still find what it saved.
    out_dir = Path(out_dir)
    work = out_dir / "work"
    kept = [f"ckpt_e{e}.pt" for e in checkpoint_epochs] + [f"state_e{e}.pt" for e in spawn_epochs]
    earlier = earlier_run(work, training.run_key(trackers, start_state))
    params, result_path = training.params(), out_dir / "result.json"
    with run(training.args, name, params, result_path, consumed, training.device, earlier) as mlrun:
        if mlrun.info.run_id != earlier:
            files.write_json({"run_id": mlrun.info.run_id}, work / RUN_FILE)
        subset = training.subset
        tracking.log_training_set(training.training_set_name(), subset, training.labels[subset], training.args.dataset)
        for path in artifacts:
            tracking.log_artifact(path)
        start = time.time()
        model = training.train(work, checkpoint_epochs, spawn_epochs, trackers, start_state)
        for file in kept:
            files.publish(work / file, out_dir / file)
        result = training.result(mlrun.info.run_id, model, time.time() - start)
        if outputs is not None:
            result.update(outputs(result, model))
        files.write_json(result, result_path)
    clean_work(work, kept)
    return result


# A job of several runs keeps a copy of each finished run's files beside its folder (<run folder>.done/)
# until the whole job is done: Snakemake deletes a failed job's outputs, and its next try takes the runs an
# earlier try finished from there rather than train them again.
DONE_SUFFIX = ".done"
SPEC_FILE = "spec.json"


def keep_finished(spec, out_dir, outputs):
    """Keep a copy of the finished run's `outputs` (in `out_dir`) and its spec, for the job's next try."""
    done = Path(f"{out_dir}{DONE_SUFFIX}")
    for name in outputs:
        files.publish(Path(out_dir) / name, done / name)
    files.write_json(spec, done / SPEC_FILE)  # last: it marks the copy whole


def restore_finished(spec, out_dir, outputs):
    """Whether an earlier try of the job finished this run (the same spec): its files are put back."""
    done = Path(f"{out_dir}{DONE_SUFFIX}")
    if not (done / SPEC_FILE).exists() or files.read_json(done / SPEC_FILE) != spec:
        return False
    for name in outputs:
        files.publish(done / name, Path(out_dir) / name)
    print(f"{out_dir}: finished by an earlier try of this job, kept", flush=True)
    return True


def forget_finished(out_dirs):
    """The job is done: the copies of its runs go."""
    for out_dir in out_dirs:
        shutil.rmtree(f"{out_dir}{DONE_SUFFIX}", ignore_errors=True)


def earlier_run(work, key):
    """The MLflow run of the job's earlier try if the training (its run `key`) resumes from the state
    that try saved, else None."""
    if (work / RUN_FILE).exists() and resumes(work / "state.pt", key):
        return files.read_json(work / RUN_FILE)["run_id"]
    return None


def clean_work(work, kept):
    """The job is done (a stop no longer interrupts it). The state goes first: a job killed in between
    starts again rather than resume from a state whose checkpoints are gone."""
    (work / "state.pt").unlink(missing_ok=True)
    (work / RUN_FILE).unlink(missing_ok=True)
    for file in kept:
        (work / file).unlink()
    if work.exists():
        work.rmdir()
