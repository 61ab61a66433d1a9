"""`datadiet <command>`: the entry point the workflow's rules call; each command is one job.

Rules pass what a job needs as one JSON `--spec` (so every hyperparameter lands in MLflow and a
change to it reruns exactly the jobs it affects) and wire input and output files as options.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from . import data, dynamics, models, noise, prune, results, scores, selection, tracking
from .train import (Callback, TrainConfig, TrainSet, checkpoint, epoch_count, evaluate, init_model,
                    load_checkpoint, run_seeds, total_steps, train)


class PrintProgress(Callback):
    """One line per report with speed and time left; the rule's log keeps it."""

    def __init__(self, total_epochs, total_steps, batch_size, report_every):
        self.total_epochs, self.total_steps, self.batch_size = total_epochs, total_steps, batch_size
        self.report_every = report_every
        self.start, self.start_step = time.time(), None

    def on_epoch_end(self, epoch, step, metrics):
        if self.start_step is None:  # a resumed run counts speed from where it resumed
            self.start_step = step - min(step, self.report_every)
        rate = (step - self.start_step) / max(time.time() - self.start, 1e-9)
        shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        print(f"epoch {epoch}/{self.total_epochs} step {step}/{self.total_steps} {shown} "
              f"{rate * self.batch_size:.0f} img/s, {(self.total_steps - step) / max(rate, 1e-9):.0f} s left",
              flush=True)


def progress_bar(total, desc):
    """A bar with images/s and time left on a terminal; silent where output goes to a file (a rule's
    log), which gets the one-line summary each command prints instead."""
    return tqdm(total=total, desc=desc, unit="img", unit_scale=True, disable=None, leave=False,
                dynamic_ncols=True)


class BarProgress(Callback):
    """A training run on a terminal: a bar of images trained, with images/s, time left and the last
    report's metrics."""

    def __init__(self, bar, batch_size):
        self.bar, self.batch_size, self.step = bar, batch_size, 0

    def on_epoch_end(self, epoch, step, metrics):
        self.bar.update((step - self.step) * self.batch_size)
        self.step = step
        self.bar.set_postfix(epoch=epoch, loss=f"{metrics['train_loss']:.3g}", acc=f"{metrics['train_accuracy']:.2f}")


class SaveCheckpoints(Callback):
    def __init__(self, out_dir, arch, width, num_classes):
        self.out_dir, self.arch, self.width, self.num_classes = Path(out_dir), arch, width, num_classes

    def on_checkpoint(self, epoch, model):
        results.save_tensors(checkpoint(model, self.arch, self.width, self.num_classes, epoch),
                             self.out_dir / f"ckpt_e{epoch}.pt")

    def on_state(self, epoch, state):
        # A spawn point of linear mode connectivity: the whole training state, optimizer included.
        results.save_tensors({**state, "arch": self.arch, "width": self.width, "num_classes": self.num_classes},
                             self.out_dir / f"state_e{epoch}.pt")


def job_device(spec):
    """Threads for this job, and the device it runs on (config `device`): "auto" takes the GPU when torch
    sees one. On a GPU, cuDNN picks its fastest kernels and matmuls use TF32: runs there are fast, not
    bit-reproducible (the CPU path is)."""
    torch.set_num_threads(spec["threads"])
    name = spec.get("device", "auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("the config says device: cuda, but torch sees no GPU on this machine "
                             "(set device: auto or cpu, or run the job on a GPU node)")
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    return torch.device(name)


def load_study_data(dataset_path, labels_path):
    """The study's dataset file and the (possibly noisy) training labels for this job."""
    dataset = results.load_tensors(dataset_path)
    labels = results.load_tensors(labels_path)["labels"]
    if len(labels) != len(dataset["train_labels"]):
        raise ValueError(f"labels file {labels_path} has {len(labels)} labels for "
                         f"{len(dataset['train_labels'])} training examples in {dataset_path}")
    return dataset, labels


def job_tags(args, consumed=()):
    tags = {"rule": args.rule, "consumed_runs": ",".join(consumed)}
    tags.update({f"wildcard.{k}": v for k, v in json.loads(args.wildcards).items()})
    return tags


def run_training(spec, dataset, labels, subset, name, tags, out_dir, save_epochs=(), state_epochs=(),
                 trackers=None, artifacts=(), data_seed=None, start_state=None, outputs=None):
    """Train one model on `subset` of the training set, as one MLflow run, and write its outputs:
    checkpoints (`save_epochs`) and full training states (`state_epochs`) in `out_dir`, then what
    `outputs(result, model)` writes (it returns more fields for the result), then result.json, the
    file that marks the job done, last. Returns the result.
    """
    device = job_device(spec)
    cfg = TrainConfig(**{**spec["train"], "lr_milestones": tuple(spec["train"]["lr_milestones"])})
    seeds = run_seeds(spec["run"])
    if data_seed is not None:
        seeds["data"] = data_seed
    steps = total_steps(cfg, len(dataset["train_labels"]), len(subset))
    epochs = epoch_count(steps, len(subset), cfg.batch_size)
    full_epoch = len(dataset["train_labels"]) // cfg.batch_size  # report as often as a full-data run
    train_set = TrainSet(dataset["train_images"][subset], labels[subset], dataset["mean"], dataset["std"])
    test = (dataset["test_images"], dataset["test_labels"])
    arch, width, num_classes = spec["model"]["arch"], spec["model"]["width"], len(dataset["classes"])
    model = init_model(arch, num_classes, width, seeds["model"]).to(device)
    params = {**spec, "seeds": seeds, "train_size": len(subset), "steps": steps}
    # Checkpoints and the resumable state live in work/ until the job is done: Snakemake deletes the
    # declared outputs of a failed job, and a resumed run must still find what it saved.
    out_dir = Path(out_dir)
    work = out_dir / "work"
    kept = [f"ckpt_e{e}.pt" for e in save_epochs] + [f"state_e{e}.pt" for e in state_epochs]
    with tracking.job_run(spec["tracking"]["uri"], spec["tracking"]["experiment"], name, params, tags,
                          output=out_dir / "result.json") as run:
        for path in artifacts:
            tracking.log_artifact(path)
        callbacks = [PrintProgress(epochs, steps, cfg.batch_size, full_epoch), tracking.LogMetrics(),
                     SaveCheckpoints(work, arch, width, num_classes)]
        start = time.time()
        train(model, train_set, cfg, seeds["data"], steps, test=test, save_epochs=save_epochs,
              state_epochs=state_epochs, state_path=work / "state.pt", callbacks=callbacks, trackers=trackers,
              start_state=start_state, report_every=full_epoch, autocast=device.type == "cuda")
        for file in kept:
            results.publish(work / file, out_dir / file)
        final = evaluate(model, *test, dataset["mean"], dataset["std"])
        tracking.log_metrics({"final_test_accuracy": final["accuracy"], "final_test_loss": final["loss"]})
        result = {"run_id": run.info.run_id, "test_accuracy": final["accuracy"], "test_loss": final["loss"],
                  "train_size": len(subset), "steps": steps, "seconds": round(time.time() - start, 2),
                  "dataset": spec["dataset"], "arch": arch, "noise": spec["noise"], "run": spec["run"],
                  "num_examples": len(dataset["train_labels"])}
        if outputs is not None:
            result.update(outputs(result, model))
        results.write_json(result, out_dir / "result.json")
    # The job is done (a stop no longer interrupts it). The state goes first: a job killed in between
    # starts again rather than resume from a state whose checkpoints are gone.
    (work / "state.pt").unlink(missing_ok=True)
    for file in kept:
        (work / file).unlink()
    if work.exists():
        work.rmdir()
    return result


def cmd_init_tracking(args):
    experiment_id = tracking.init_store(args.uri, args.experiment, args.artifacts)
    results.write_json({"uri": tracking.resolve_uri(args.uri), "experiment": args.experiment,
                        "experiment_id": experiment_id}, args.out)


def cmd_mlflow_server(args):
    Path(args.store).mkdir(parents=True, exist_ok=True)
    command = tracking.server_command(args.store, args.host, args.port, args.backend_uri)
    print("MLflow tracking server; point the jobs at it with\n"
          f"  export MLFLOW_TRACKING_URI={tracking.server_address(args.host, args.port)}", flush=True)
    os.execvp(command[0], command)


def cmd_prepare_data(args):
    spec = json.loads(args.spec)
    splits = data.load(spec, args.cache)
    train_split, test_split = splits["train"], splits["test"]
    if spec.get("num_classes") and len(train_split.classes) != spec["num_classes"]:
        raise data.DataError(f"{spec['path']} has {len(train_split.classes)} classes, "
                             f"the config says num_classes={spec['num_classes']}")
    train_index = torch.arange(len(train_split.labels))
    if spec.get("train_per_class"):
        train_index = data.subset_per_class(train_split.labels, spec["train_per_class"], spec["subset_seed"])
    test_index = torch.arange(len(test_split.labels))
    if spec.get("test_per_class"):
        test_index = data.subset_per_class(test_split.labels, spec["test_per_class"], spec["subset_seed"])
    train_images = train_split.images[train_index]
    mean, std = data.channel_stats(train_images)
    results.save_tensors({
        "train_images": train_images, "train_labels": train_split.labels[train_index],
        "train_source_index": train_index, "test_images": test_split.images[test_index],
        "test_labels": test_split.labels[test_index], "classes": train_split.classes, "mean": mean, "std": std,
    }, args.out)
    print(f"{len(train_index)} training and {len(test_index)} test images, "
          f"{len(train_split.classes)} classes -> {args.out}")


def cmd_corrupt_labels(args):
    dataset = results.load_tensors(args.dataset)
    labels, corrupted = noise.permute_labels(dataset["train_labels"], args.fraction, args.seed)
    results.save_tensors({"labels": labels, "corrupted": corrupted}, args.out)
    changed = (labels != dataset["train_labels"]).sum().item()
    print(f"noise {args.fraction}: {len(corrupted)} labels permuted, {changed} changed -> {args.out}")


def cmd_train_scoring(args):
    """A full-data run that saves the checkpoints scores need, forgetting and AUM."""
    spec = json.loads(args.spec)
    dataset, labels = load_study_data(args.dataset, args.labels)
    subset = torch.arange(len(labels))
    trackers = {"forgetting": scores.ForgettingTracker(len(labels)), "aum": scores.AUMTracker(len(labels))}
    name = f"scoring-train seed={spec['run']} noise={spec['noise']} {spec['dataset']} {spec['model']['arch']}"

    def write_scores(result, model):
        values = {"forgetting": trackers["forgetting"].score(spec["never_learned"]), "aum": trackers["aum"].score()}
        for score, path in (("forgetting", args.forgetting), ("aum", args.aum)):
            results.write_scores(path, subset, labels, {"score": values[score]},
                                 {"score": score, "seed": spec["run"], "runs": [result["run_id"]]})
            tracking.log_artifact(path)
        return {}

    run_training(spec, dataset, labels, subset, name, job_tags(args), args.out_dir, save_epochs=spec["save_epochs"],
                 state_epochs=spec["state_epochs"], trackers=trackers, outputs=write_scores)


def cmd_score(args):
    """GraNd or EL2N of every training example from one checkpoint, as one MLflow run."""
    spec = json.loads(args.spec)
    device = job_device(spec)
    dataset, labels = load_study_data(args.dataset, args.labels)
    model = load_checkpoint(args.checkpoint, spec["arch"]).to(device)
    images = data.normalize(dataset["train_images"], dataset["mean"], dataset["std"], model.memory_format)
    trained_by = results.read_json(args.train_result)["run_id"]
    name = f"score {spec['kind']}@{spec['epoch']} seed={spec['run']} noise={spec['noise']} {spec['dataset']} {spec['arch']}"
    with tracking.job_run(spec["tracking"]["uri"], spec["tracking"]["experiment"], name, spec,
                          job_tags(args, [trained_by]), output=args.out) as run:
        start = time.time()
        with progress_bar(len(labels), f"{spec['kind']}@{spec['epoch']}") as bar:
            if spec["kind"] == "grand":
                values = scores.grand(model, images, labels, chunk_size=spec["grand_chunk_size"], progress=bar.update)
            else:
                values = scores.el2n(model, images, labels, progress=bar.update)
        seconds = time.time() - start
        print(f"{spec['kind']}@{spec['epoch']}: {len(values)} examples in {seconds:.1f} s "
              f"({len(values) / seconds:.0f} img/s)")
        tracking.log_metrics({"seconds": seconds, "mean_score": values.mean().item()})
        results.write_scores(args.out, torch.arange(len(labels)), labels, {"score": values},
                             {"score": f"{spec['kind']}_e{spec['epoch']}", "seed": spec["run"],
                              "runs": [run.info.run_id], "trained_by": trained_by})
        tracking.log_artifact(args.out)


def cmd_input_norm(args):
    spec = json.loads(args.spec)
    dataset, labels = load_study_data(args.dataset, args.labels)
    images = data.normalize(dataset["train_images"], dataset["mean"], dataset["std"])
    with tracking.job_run(spec["tracking"]["uri"], spec["tracking"]["experiment"],
                          f"score input_norm noise={spec['noise']} {spec['dataset']}", spec, job_tags(args),
                          output=args.out) as run:
        values = scores.input_norm(images)
        results.write_scores(args.out, torch.arange(len(labels)), labels, {"mean": values},
                             {"score": "input_norm", "runs": [run.info.run_id]})
        tracking.log_artifact(args.out)


def cmd_aggregate(args):
    """Mean over seeds, with each seed's column kept beside it."""
    tables = [results.read_scores(path) for path in args.inputs]
    provenance = [results.read_json(results.provenance_path(path)) for path in args.inputs]
    columns = {f"seed{p['seed']}": torch.tensor(t["score"].to_numpy()) for t, p in zip(tables, provenance)}
    mean = torch.stack(list(columns.values())).mean(0)
    results.write_scores(args.out, tables[0]["index"], tables[0]["label"], {"mean": mean, **columns},
                         {"score": provenance[0]["score"], "runs": [r for p in provenance for r in p["runs"]]})


def select(spec, n, score_table):
    """The subset a retraining run trains on, by its selection spec."""
    how, keep, seed = spec["selection"], spec["keep"], run_seeds(spec["run"])["subset"]
    if how["kind"] == "random":
        return selection.random(n, keep, seed)
    values = torch.tensor(score_table["mean"].to_numpy())
    if how["kind"] == "ccs":
        return selection.ccs(values, keep, seed, beta=how["beta"], strata=how["strata"])
    if how["kind"] == "window":
        return selection.window(values, keep, selection.window_offset(n, keep, how["position"]))
    return selection.STRATEGIES[how["kind"]](values, keep)


def cmd_retrain(args):
    """Select a subset (by a score or at random) and train on it for the same step budget."""
    spec = json.loads(args.spec)
    dataset, labels = load_study_data(args.dataset, args.labels)
    n, method, keep = len(labels), spec["method"], spec["keep"]
    table, consumed = None, []
    if spec["selection"]["kind"] != "random":
        table = results.read_scores(args.scores, n)
        consumed = results.read_json(results.provenance_path(args.scores))["runs"]
    subset = select(spec, n, table)
    out_dir = Path(args.out_dir)
    subset_file = out_dir / "subset.json"
    results.write_json({"method": method, "keep": keep, "run": spec["run"], "selection": spec["selection"],
                        "indices": subset.tolist(), "score_runs": consumed}, subset_file)
    position = f" pos={spec['selection']['position']}" if "position" in spec["selection"] else ""
    name = (f"retrain {tracking.method_label(method)} keep={keep}{position} rep={spec['run']} "
            f"noise={spec['noise']} {spec['dataset']} {spec['model']['arch']}")
    run_training(spec, dataset, labels, subset, name, job_tags(args, consumed), out_dir, artifacts=[subset_file],
                 outputs=lambda result, model: {"method": method, "keep": keep, "selection": spec["selection"],
                                                "score_runs": consumed})


def cmd_ntk_velocity(args):
    """NTK velocity of score-sorted blocks of examples between the checkpoints at t and t+1."""
    spec = json.loads(args.spec)
    device = job_device(spec)
    dataset, labels = load_study_data(args.dataset, args.labels)
    before, after = (load_checkpoint(path, spec["arch"]).to(device) for path in (args.before, args.after))
    images = data.normalize(dataset["train_images"], dataset["mean"], dataset["std"], before.memory_format)
    table = results.read_scores(args.scores, len(labels))
    order = selection.ascending_order(torch.tensor(table["mean"].to_numpy()))
    size = spec["block_size"]
    count = len(order) // size
    if count < 2:
        raise ValueError(f"ntk block_size {size} leaves fewer than 2 blocks of {len(order)} examples")
    blocks = list(range(count)) if not spec["blocks"] else sorted(
        {round(i * (count - 1) / (spec["blocks"] - 1)) for i in range(spec["blocks"])})
    consumed = [results.read_json(Path(args.before).parent / "result.json")["run_id"]]
    name = f"ntk-velocity e{spec['epoch']} noise={spec['noise']} {spec['dataset']} {spec['arch']}"
    with tracking.job_run(spec["tracking"]["uri"], spec["tracking"]["experiment"], name, spec,
                          job_tags(args, consumed), output=args.out):
        start = time.time()
        velocity = dynamics.ntk_velocity(before, after, images, order, size, chunk_size=spec["chunk_size"],
                                         blocks=blocks)
        print(f"{len(blocks)} blocks of {size} in {time.time() - start:.1f} s")
        corrupted = torch.zeros(len(labels), dtype=torch.bool)
        corrupted[results.load_tensors(args.labels)["corrupted"]] = True
        mean = table["mean"].to_numpy()
        rows = []
        for b, v in zip(blocks, velocity.tolist()):
            block = order[b * size:(b + 1) * size]
            rows.append({"block": b, "first_rank": b * size, "velocity": v, "mean_score": mean[block.numpy()].mean(),
                         "corrupted_fraction": corrupted[block].float().mean().item()})
        out = pd.DataFrame(rows).assign(epoch=spec["epoch"], noise=spec["noise"], num_examples=len(labels))
        results.write_text(out.to_csv(index=False), args.out)
        tracking.log_artifact(args.out)


def cmd_lmc_child(args):
    """A child of linear mode connectivity: the parent's state at the spawn epoch, trained to the end
    on its own data order."""
    spec = json.loads(args.spec)
    dataset, labels = load_study_data(args.dataset, args.labels)
    state = torch.load(args.spawn, map_location="cpu", weights_only=False)
    parent = results.read_json(args.parent)["run_id"]
    # Children of one parent differ only in data order; run 0's own order is the parent's.
    data_seed = run_seeds(spec["run"])["data"] + 1_000_003 * (spec["child"] + 1)
    name = (f"lmc-child spawn=e{spec['spawn_epoch']} child={spec['child']} "
            f"noise={spec['noise']} {spec['dataset']} {spec['model']['arch']}")
    subset = torch.arange(len(labels))

    def write_model(result, model):
        results.save_tensors(checkpoint(model, spec["model"]["arch"], spec["model"]["width"],
                                        len(dataset["classes"]), None), Path(args.out_dir) / "final.pt")
        return {"spawn_epoch": spec["spawn_epoch"], "child": spec["child"], "parent": parent}

    run_training(spec, dataset, labels, subset, name, job_tags(args, [parent]), args.out_dir, data_seed=data_seed,
                 start_state=state, outputs=write_model)


def cmd_lmc_barrier(args):
    """Error barrier between the two children of every spawn epoch, on high-, low-score and random sets."""
    spec = json.loads(args.spec)
    device = job_device(spec)
    dataset, labels = load_study_data(args.dataset, args.labels)
    table = results.read_scores(args.scores, len(labels))
    sets = dynamics.example_sets(torch.tensor(table["mean"].to_numpy()), spec["set_size"], seed=0)
    # The example sets, preprocessed once for every spawn epoch (all children share one architecture).
    memory_format = load_checkpoint(args.children[0], spec["arch"]).memory_format
    inputs = {name: (data.normalize(dataset["train_images"][index], dataset["mean"], dataset["std"], memory_format),
                     labels[index]) for name, index in sets.items()}
    children = {}
    for path, result_path in zip(args.children, args.results):
        child = results.read_json(result_path)
        children.setdefault(child["spawn_epoch"], {})[child["child"]] = (path, child["run_id"])
    consumed = [run_id for pair in children.values() for _, run_id in pair.values()]
    name = f"lmc-barrier noise={spec['noise']} {spec['dataset']} {spec['arch']}"
    rows = []
    with tracking.job_run(spec["tracking"]["uri"], spec["tracking"]["experiment"], name, spec,
                          job_tags(args, consumed), output=args.out):
        for spawn in sorted(children):
            (path_a, _), (path_b, _) = children[spawn][0], children[spawn][1]
            model = load_checkpoint(path_a, spec["arch"]).to(device)
            # A copy: error_barrier loads interpolations into `model`, which would overwrite a view.
            state_a = {k: v.clone() for k, v in model.state_dict().items()}
            state_b = load_checkpoint(path_b, spec["arch"]).state_dict()
            for set_name, (images, set_labels) in inputs.items():
                out = dynamics.error_barrier(model, state_a, state_b, images, set_labels, spec["alphas"])
                rows.append({"spawn_epoch": spawn, "set": set_name, "barrier": out["barrier"],
                             "error_a": out["error_a"], "error_b": out["error_b"],
                             **{f"error_alpha{a}": e for a, e in out["errors"].items()}})
                print(f"spawn e{spawn} {set_name}: barrier {out['barrier']:.4f}")
                tracking.log_metrics({f"barrier_{set_name}": out["barrier"]}, step=spawn)
        results.write_text(pd.DataFrame(rows).assign(noise=spec["noise"]).to_csv(index=False), args.out)
        tracking.log_artifact(args.out)


def cmd_report(args):
    from . import report
    report.build(json.loads(args.spec), vars(args), args.out_dir, args.html)


def cmd_estimate(args):
    from . import estimate
    estimate.main(args.configfile, args.more_configfiles)


def cmd_prune(args):
    """Score every image of an ImageFolder tree with short training runs (an MLflow run each), keep a
    fraction by a selection method (a summary run naming the scoring runs), write what was kept."""
    start = time.time()
    out = Path(args.out)
    score_epoch = prune.check_options(args.score, args.method, args.keep, args.epochs, args.score_epoch, args.seeds,
                                      args.window_position, out, args.link)
    device = job_device({"threads": args.threads, "device": args.device})
    paths, labels, classes = prune.list_folder(args.data)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size)
    seeds = 0 if args.score == "input_norm" else args.seeds
    if seeds:  # too few images for one batch: an error now rather than after decoding them
        steps, _ = prune.run_steps(args.score, cfg, len(paths), score_epoch)
    with progress_bar(len(paths), "decoding") as bar:
        images = prune.decode_images(paths, args.image_size, args.fit, bar.update)
    train_set = TrainSet(images, labels, *data.channel_stats(images))
    print(f"{len(paths)} images of {len(classes)} classes decoded to {args.image_size}x{args.image_size} "
          f"({args.fit}) in {time.time() - start:.1f} s", flush=True)

    out.mkdir(parents=True, exist_ok=True)
    uri = args.tracking_uri or f"sqlite:///{out.resolve() / 'mlflow.db'}"
    tracking.init_store(uri, args.experiment, out / "mlartifacts")
    label = f"{args.score}@{score_epoch}" if args.score in prune.AT_EPOCH else args.score
    params = {**{k: v for k, v in vars(args).items() if k != "func"}, "data": str(Path(args.data).resolve()),
              "out": str(out.resolve()), "score_epoch": score_epoch, "num_examples": len(paths),
              "num_classes": len(classes), "device": str(device)}
    columns, scoring_runs = {}, []
    if not seeds:
        columns["input_norm"] = prune.input_norm(train_set)
    for seed in range(seeds):
        seed_params = {**params, "seed": seed, "seeds": run_seeds(seed), "steps": steps}
        with tracking.job_run(uri, args.experiment, f"prune-train {label} seed={seed}", seed_params,
                              {"command": "prune"}, output=out.resolve() / "models" / f"seed{seed}.pt",
                              ends_job=False) as run:
            trained = time.time()
            with progress_bar(steps * cfg.batch_size, f"train seed={seed}") as bar:
                steps_per_epoch = len(paths) // cfg.batch_size
                shown = (BarProgress(bar, cfg.batch_size) if not bar.disable else
                         PrintProgress(epoch_count(steps, len(paths), cfg.batch_size), steps, cfg.batch_size,
                                       steps_per_epoch))
                model, trackers = prune.train_seed(train_set, len(classes), cfg, args.arch, args.width, seed,
                                                   args.score, score_epoch, device, [tracking.LogMetrics(), shown])
            scored = time.time()
            with progress_bar(len(paths), f"{label} seed={seed}") as bar:
                values = prune.score_seed(args.score, model, trackers, train_set, args.never_learned, bar.update)
            done = time.time()
            print(f"seed {seed}: {steps} steps in {scored - trained:.1f} s, {label} of {len(paths)} images in "
                  f"{done - scored:.1f} s", flush=True)
            results.save_tensors(checkpoint(model, args.arch, args.width, len(classes),
                                            score_epoch if args.score in prune.AT_EPOCH else args.epochs),
                                 out / "models" / f"seed{seed}.pt")
            tracking.log_metrics({"train_seconds": scored - trained, "score_seconds": done - scored,
                                  "mean_finite_score": values[values.isfinite()].mean().item()})
        columns[f"{args.score}_seed{seed}"] = values
        scoring_runs.append(run.info.run_id)

    table = prune.score_table(paths, labels, classes, columns)
    how = {"kind": args.method, "beta": args.ccs_beta, "strata": args.ccs_strata, "position": args.window_position}
    kept = select({"selection": how, "keep": args.keep, "run": 0}, len(paths), table)
    with tracking.job_run(uri, args.experiment, f"prune {label} {args.method} keep={args.keep}", params,
                          {"command": "prune", "consumed_runs": ",".join(scoring_runs)},
                          output=out.resolve() / "prune.json") as run:
        prune.write_outputs(out, table, kept, args.data, args.link)
        results.write_json({"args": params, "score": label, "tracking_uri": tracking.resolve_uri(uri),
                            "experiment": args.experiment, "runs": {"scoring": scoring_runs, "selection": run.info.run_id},
                            "git_commit": tracking.git_commit(), "classes": classes, "num_examples": len(paths),
                            "num_kept": len(kept), "mean": train_set.mean.tolist(), "std": train_set.std.tolist(),
                            "seconds": round(time.time() - start, 2)}, out / "prune.json")
        for name in ("scores.csv", "keep.txt", "prune.json"):
            tracking.log_artifact(out / name)
        tracking.log_metrics({"num_examples": len(paths), "num_kept": len(kept), "seconds": time.time() - start})
    linked = f", symlinks in {args.link}" if args.link else ""
    print(f"kept {len(kept)} of {len(paths)} images ({args.method} by {label}): {out / 'keep.txt'}, "
          f"scores in {out / 'scores.csv'}{linked}; MLflow: {tracking.resolve_uri(uri)}", flush=True)


def cmd_scores(args):
    """Per-class summary and the hardest images of a prune scores.csv, and a figure of them."""
    from . import figures
    table, path = prune.read_table(args.path)
    print(prune.summary(table, args.top))
    figure = Path(args.figure or path.with_name("scores_grid.png"))
    figures.score_grid(table, figure, args.grid)
    print(f"figure: {figure}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="datadiet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, func, help):
        p = sub.add_parser(name, help=help)
        p.set_defaults(func=func)
        return p

    def tracked(p):
        p.add_argument("--spec", required=True, help="the job's parameters as JSON")
        p.add_argument("--rule", default="manual", help="workflow rule (an MLflow tag)")
        p.add_argument("--wildcards", default="{}", help="the rule's wildcards as JSON (MLflow tags)")
        return p

    p = command("init-tracking", cmd_init_tracking, "create the MLflow store and experiment once")
    p.add_argument("--uri", required=True)
    p.add_argument("--experiment", required=True)
    p.add_argument("--artifacts", help="artifact root for a new experiment")
    p.add_argument("--out", required=True, help="JSON marker written when the store is ready")

    p = command("mlflow-server", cmd_mlflow_server, "the MLflow tracking server for jobs on a cluster")
    p.add_argument("--store", default="results/mlflow-server", help="folder of its database and artifacts")
    p.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to accept jobs from other nodes")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--backend-uri", help="a database URI (e.g. postgresql://...) instead of SQLite in --store")

    p = command("prepare-data", cmd_prepare_data, "decode, cache and subset a dataset")
    p.add_argument("--spec", required=True, help="the config's data section as JSON")
    p.add_argument("--cache", required=True, help="directory for decoded-dataset caches")
    p.add_argument("--out", required=True)

    p = command("corrupt-labels", cmd_corrupt_labels, "permute a fraction of the training labels")
    p.add_argument("--dataset", required=True)
    p.add_argument("--fraction", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)

    p = tracked(command("train-scoring", cmd_train_scoring, "full-data training run for scores"))
    for opt in ("--dataset", "--labels", "--out-dir", "--forgetting", "--aum"):
        p.add_argument(opt, required=True)

    p = tracked(command("score", cmd_score, "GraNd or EL2N from a checkpoint"))
    for opt in ("--dataset", "--labels", "--checkpoint", "--train-result", "--out"):
        p.add_argument(opt, required=True)

    p = tracked(command("input-norm", cmd_input_norm, "the input-norm control score"))
    for opt in ("--dataset", "--labels", "--out"):
        p.add_argument(opt, required=True)

    p = command("aggregate", cmd_aggregate, "mean of per-seed scores")
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--out", required=True)

    p = tracked(command("retrain", cmd_retrain, "select a subset and train on it"))
    for opt in ("--dataset", "--labels", "--out-dir"):
        p.add_argument(opt, required=True)
    p.add_argument("--scores", help="mean score file (not needed for random)")

    p = tracked(command("ntk-velocity", cmd_ntk_velocity, "NTK velocity of score-sorted blocks"))
    for opt in ("--dataset", "--labels", "--before", "--after", "--scores", "--out"):
        p.add_argument(opt, required=True)

    p = tracked(command("lmc-child", cmd_lmc_child, "train a child from a parent's spawn state"))
    for opt in ("--dataset", "--labels", "--spawn", "--parent", "--out-dir"):
        p.add_argument(opt, required=True)

    p = tracked(command("lmc-barrier", cmd_lmc_barrier, "error barriers between children"))
    for opt in ("--dataset", "--labels", "--scores", "--out"):
        p.add_argument(opt, required=True)
    p.add_argument("--children", nargs="+", required=True)
    p.add_argument("--results", nargs="+", required=True)

    p = command("report", cmd_report, "figures, claims and the HTML report from result files")
    p.add_argument("--spec", required=True)
    for opt in ("--curve", "--how-early", "--window", "--transfer", "--ntk", "--lmc", "--scores", "--labels"):
        p.add_argument(opt, nargs="*", default=[])
    p.add_argument("--benchmarks", required=True, help="folder of the jobs' Snakemake benchmark files")
    p.add_argument("--out-dir", required=True, help="folder for the figures and tables")
    p.add_argument("--html", required=True)

    p = command("estimate", cmd_estimate, "jobs and GPU-hours per experiment of a config (a dry run)")
    p.add_argument("--configfile", default="config.yaml")
    p.add_argument("more_configfiles", nargs="*", help="more config files merged over it")

    p = command("prune", cmd_prune, "score your own ImageFolder of images and keep the hardest (or another) part")
    p.add_argument("--data", required=True, help="an ImageFolder tree: one subfolder of images per class, "
                   "at least 2 classes, any image size, jpg/png/... (subfolders of a class folder count)")
    p.add_argument("--out", required=True, help="folder for scores.csv, keep.txt, prune.json, models/ "
                   "(each scoring run's model) and the MLflow store")
    p.add_argument("--keep", type=float, default=0.5, help="fraction of the images kept, in (0, 1] (default 0.5)")
    p.add_argument("--score", default="el2n", help=f"{', '.join(prune.SCORES)} (default el2n; higher = harder)")
    p.add_argument("--score-epoch", type=int, help="el2n and grand: the epoch the score is taken at (0 = at "
                   "init; default the paper's, a tenth of --epochs, at least 1); the runs stop there")
    p.add_argument("--method", default="keep_max", help=f"{', '.join(prune.METHODS)} (default keep_max: keep "
                   "the hardest, the paper's; keep_min when data is scarce)")
    p.add_argument("--ccs-beta", type=float, default=0.1, help="ccs: hardest fraction dropped first (default 0.1)")
    p.add_argument("--ccs-strata", type=int, default=50, help="ccs: score strata (default 50)")
    p.add_argument("--window-position", type=float, help="window: where the kept window of the ranking "
                   "starts, 0 = the easiest window, 1 = the hardest (required with --method window)")
    p.add_argument("--never-learned", choices=["inf", "max"], default="inf",
                   help="forgetting score of never-learned images (default inf, the official code's)")
    p.add_argument("--seeds", type=int, default=2, help="scoring runs averaged (default 2; the paper: 10)")
    p.add_argument("--epochs", type=int, default=20, help="length of a scoring run's schedule in epochs "
                   "(default 20); forgetting and aum train all of it")
    p.add_argument("--arch", choices=sorted(models.ARCHS), default="resnet18")
    p.add_argument("--width", type=int, default=64, help="ResNet width (default 64, the standard network; "
                   "16 or 8 for a quick CPU run)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--image-size", type=int, default=32, help="images are brought to size x size (default 32)")
    p.add_argument("--fit", choices=data.FITS, default="resize", help="resize: both sides to --image-size "
                   "(keeps the whole image, changes its aspect ratio); center-crop: the shorter side to "
                   "--image-size, then the centre square (keeps the aspect ratio, cuts the long side's ends)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads (default all cores)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: the GPU if torch sees one")
    p.add_argument("--link", help="also make this folder: an ImageFolder tree of symlinks to the kept images "
                   "(must not exist or be empty)")
    p.add_argument("--tracking-uri", help="MLflow store (default sqlite:///OUT/mlflow.db; MLFLOW_TRACKING_URI wins)")
    p.add_argument("--experiment", default="datadiet-prune", help="MLflow experiment (default datadiet-prune)")

    p = command("scores", cmd_scores, "summarise a prune scores.csv per class and draw its hardest and easiest images")
    p.add_argument("path", help="a scores.csv written by datadiet prune, or its folder")
    p.add_argument("--top", type=int, default=10, help="hardest images listed (default 10)")
    p.add_argument("--figure", help="the figure's path (default scores_grid.png next to the csv)")
    p.add_argument("--grid", type=int, default=8, help="images per row of the figure, hardest and easiest (default 8)")

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError, FloatingPointError) as error:
        if os.environ.get("DATADIET_TRACEBACK"):
            raise
        # DataError is a ValueError: bad inputs end with one line naming them, not a traceback.
        print(f"datadiet {args.command}: error: {error}", file=sys.stderr)
        sys.exit(1)
    # A stop (SIGTERM, Ctrl-C) is the entry point's (__main__.py): it covers the imports too.
