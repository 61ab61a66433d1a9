"""The user's commands: `datadiet prune` (score your own ImageFolder and keep part of it), `datadiet
scores` (look at what it scored), `datadiet estimate` and `datadiet mlflow-server`."""

import os
import sys
import time
from pathlib import Path

import torch

from .. import data, selection
from ..models import checkpoint
from ..recipe import epoch_count, run_seeds
from ..runtime import files, hardware, progress
from ..train import TrainConfig, TrainSet
from . import prune


def run_prune(args):
    """Score every image of an ImageFolder tree with short training runs (an MLflow run each), keep a
    fraction by a selection method (a summary run naming the scoring runs), write what was kept."""
    from ..runtime import tracking  # the one tool that tracks

    start = time.time()
    out = Path(args.out)
    score_epoch = prune.check_options(
        args.score,
        args.method,
        args.keep,
        args.epochs,
        args.score_epoch,
        args.seeds,
        args.window_left_out,
        out,
        args.link,
    )
    seeds = 0 if args.score == "input_norm" else args.seeds
    images = PruneImages(args, score_epoch, seeds)
    out.mkdir(parents=True, exist_ok=True)
    uri = args.tracking_uri or f"sqlite:///{out.resolve() / 'mlflow.db'}"
    tracking.init_store(uri, args.experiment, out / "mlartifacts")
    params = prune_params(args, out, score_epoch, images)
    columns, scoring_runs = {}, []
    if not seeds:
        columns["input_norm"] = prune.input_norm(images.train_set)
    for seed in range(seeds):
        columns[f"{args.score}_seed{seed}"], run_id = images.score_seed(seed, uri, params)
        scoring_runs.append(run_id)
    subset_seed = run_seeds(args.selection_seed)["subset"]
    table = prune.score_table(images.paths, images.labels, images.classes, columns, subset_seed)
    kept, described = select(args, images, torch.tensor(table["mean"].to_numpy()), subset_seed)
    with tracking.job_run(
        uri,
        args.experiment,
        f"prune {images.label} {args.method} keep={args.keep}",
        params,
        {"command": "prune", "consumed_runs": ",".join(scoring_runs)},
        output=out.resolve() / "prune.json",
    ) as run:
        summary = {
            "args": params,
            "score": images.label,
            "tracking_uri": tracking.resolve_uri(uri),
            "experiment": args.experiment,
            "runs": {"scoring": scoring_runs, "selection": run.info.run_id},
            "git_commit": tracking.git_commit(),
            **images.summary(len(kept)),
            **described,
            "seconds": round(time.time() - start, 2),
        }
        write_prune(out, table, kept, args, summary)
    linked = f", symlinks in {args.link}" if args.link else ""
    print(
        f"{kept_line(args, images, described['class_histogram'])}: {out / 'keep.txt'}, "
        f"scores in {out / 'scores.csv'}{linked}; MLflow: {tracking.resolve_uri(uri)}",
        flush=True,
    )


def select(args, images, mean, seed):
    """The kept indices and what prune.json records of them; a large tie at the cut is a warning."""
    chosen_by = {
        "kind": args.method,
        "beta": args.ccs_beta,
        "strata": args.ccs_strata,
        "left_out": args.window_left_out,
    }
    kept = selection.select(chosen_by, len(images.paths), args.keep, seed, mean)
    described, warning = selection.describe(args.method, mean, kept, images.labels, images.classes)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    return kept, described


def kept_line(args, images, counts):
    """How many were kept, chosen_by, and the fewest and most kept of a class (`counts`: the histogram)."""
    fewest, most = min(counts, key=counts.get), max(counts, key=counts.get)
    return (
        f"kept {sum(counts.values())} of {len(images.paths)} images ({args.method} by {images.label}; per class "
        f"{counts[fewest]} ({fewest}) to {counts[most]} ({most}))"
    )


def prune_params(args, out, score_epoch, images):
    """The options of a prune, resolved: its MLflow params and the `args` of prune.json."""
    return {
        **{k: v for k, v in vars(args).items() if k not in ("module", "function")},
        "data": str(Path(args.data).resolve()),
        "out": str(out.resolve()),
        "score_epoch": score_epoch,
        "num_examples": len(images.paths),
        "num_classes": len(images.classes),
        "device": str(images.device),
    }


def write_prune(out, table, kept, args, summary):
    from ..runtime import tracking

    prune.write_outputs(out, table, kept, args.data, args.link)
    files.write_json(summary, out / "prune.json")
    for name in ("scores.csv", "keep.txt", "prune.json"):
        tracking.log_artifact(out / name)
    tracking.log_metrics(
        {"num_examples": summary["num_examples"], "num_kept": len(kept), "seconds": summary["seconds"]}
    )


class PruneImages:
    """The user's images, decoded once, and the scoring runs over them."""

    def __init__(self, args, score_epoch, seeds):
        start = time.time()
        self.args, self.score_epoch = args, score_epoch
        self.device = hardware.device(args.threads, args.device)
        self.paths, self.labels, self.classes = prune.list_folder(args.data)
        # bf16 autocast on a GPU, as the study's GPU presets; fp32 on a CPU.
        precision = "auto" if self.device.type == "cuda" else "fp32"
        self.cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, precision=precision)
        if seeds:  # too few images for one batch: an error now rather than after decoding them
            self.steps, _ = prune.run_steps(args.score, self.cfg, len(self.paths), score_epoch)
        with progress.bar(len(self.paths), "decoding") as shown:
            images = prune.decode_images(self.paths, args.image_size, args.fit, shown.update)
        self.train_set = TrainSet(images, self.labels, *data.channel_stats(images))
        self.label = f"{args.score}@{score_epoch}" if args.score in prune.AT_EPOCH else args.score
        print(
            f"{len(self.paths)} images of {len(self.classes)} classes decoded to {args.image_size}x"
            f"{args.image_size} ({args.fit}) in {time.time() - start:.1f} s",
            flush=True,
        )

    def summary(self, num_kept):
        return {
            "classes": self.classes,
            "num_examples": len(self.paths),
            "num_kept": num_kept,
            "mean": self.train_set.mean.tolist(),
            "std": self.train_set.std.tolist(),
        }

    def score_seed(self, seed, uri, params):
        """(scores, MLflow run id) of scoring run `seed`; its model is kept in models/."""
        from ..runtime import tracking

        args = self.args
        seed_params = {**params, "seed": seed, "seeds": run_seeds(seed), "steps": self.steps}
        model_path = Path(args.out).resolve() / "models" / f"seed{seed}.pt"
        with tracking.job_run(
            uri,
            args.experiment,
            f"prune-train {self.label} seed={seed}",
            seed_params,
            {"command": "prune"},
            output=model_path,
            ends_job=False,
        ) as run:
            trained = time.time()
            model, trackers = self.train(seed, [tracking.LogMetrics()])
            scored = time.time()
            with progress.bar(len(self.paths), f"{self.label} seed={seed}") as shown:
                values = prune.score_seed(args.score, model, trackers, self.train_set, args.never_learned, shown.update)
            done = time.time()
            print(
                f"seed {seed}: {self.steps} steps in {scored - trained:.1f} s, {self.label} of {len(self.paths)} "
                f"images in {done - scored:.1f} s",
                flush=True,
            )
            epoch = self.score_epoch if args.score in prune.AT_EPOCH else args.epochs
            files.save_tensors(checkpoint(model, args.arch, args.width, len(self.classes), epoch), model_path)
            tracking.log_metrics(
                {
                    "train_seconds": scored - trained,
                    "score_seconds": done - scored,
                    "mean_finite_score": values[values.isfinite()].mean().item(),
                }
            )
        return values, run.info.run_id

    def train(self, seed, callbacks):
        args, cfg, n = self.args, self.cfg, len(self.paths)
        with progress.bar(self.steps * cfg.batch_size, f"train seed={seed}") as shown:
            if shown.disable:
                epochs = epoch_count(self.steps, n, cfg.batch_size)
                callbacks = [
                    *callbacks,
                    progress.PrintProgress(epochs, self.steps, cfg.batch_size, n // cfg.batch_size),
                ]
            else:
                callbacks = [*callbacks, progress.BarProgress(shown, cfg.batch_size)]
            return prune.train_seed(
                self.train_set,
                len(self.classes),
                cfg,
                args.arch,
                args.width,
                args.init,
                seed,
                args.score,
                self.score_epoch,
                self.device,
                callbacks,
            )


def show_scores(args):
    """Per-class summary and the hardest images of a prune scores.csv, and a figure of them."""
    from ..study import figures

    table, path = prune.read_table(args.path)
    print(prune.summary(table, args.top))
    figure = Path(args.figure or path.with_name("scores_grid.png"))
    figures.score_grid(table, figure, args.grid)
    print(f"figure: {figure}")


def estimate(args):
    from ..study import estimate

    estimate.main(args.configfile, args.more_configfiles)


def mlflow_server(args):
    from ..runtime import tracking

    Path(args.store).mkdir(parents=True, exist_ok=True)
    command = tracking.server_command(args.store, args.host, args.port, args.backend_uri)
    print(
        "MLflow tracking server; point the jobs at it with\n"
        f"  export MLFLOW_TRACKING_URI={tracking.server_address(args.host, args.port)}",
        flush=True,
    )
    os.execvp(command[0], command)
