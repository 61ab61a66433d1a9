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

from . import data, dynamics, noise, results, scores, selection, tracking
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
                 trackers=None, artifacts=(), data_seed=None, start_state=None):
    """Train one model on `subset` of the training set, as one MLflow run; returns (result, model).

    Checkpoints (`save_epochs`) and full training states (`state_epochs`) land in `out_dir`.
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
    # Checkpoints and the resumable state live in work/ until the run ends: Snakemake deletes the
    # declared outputs of a failed job, and a resumed run must still find what it saved.
    out_dir = Path(out_dir)
    work = out_dir / "work"
    with tracking.job_run(spec["tracking"]["uri"], spec["tracking"]["experiment"], name, params, tags) as run:
        for path in artifacts:
            tracking.log_artifact(path)
        callbacks = [PrintProgress(epochs, steps, cfg.batch_size, full_epoch), tracking.LogMetrics(),
                     SaveCheckpoints(work, arch, width, num_classes)]
        start = time.time()
        train(model, train_set, cfg, seeds["data"], steps, test=test, save_epochs=save_epochs,
              state_epochs=state_epochs, state_path=work / "state.pt", callbacks=callbacks, trackers=trackers,
              start_state=start_state, report_every=full_epoch, autocast=device.type == "cuda")
        for file in [f"ckpt_e{e}.pt" for e in save_epochs] + [f"state_e{e}.pt" for e in state_epochs]:
            os.replace(work / file, out_dir / file)
        (work / "state.pt").unlink()
        work.rmdir()
        final = evaluate(model, *test, dataset["mean"], dataset["std"])
        tracking.log_metrics({"final_test_accuracy": final["accuracy"], "final_test_loss": final["loss"]})
        result = {"run_id": run.info.run_id, "test_accuracy": final["accuracy"], "test_loss": final["loss"],
                  "train_size": len(subset), "steps": steps, "seconds": round(time.time() - start, 2),
                  "dataset": spec["dataset"], "arch": arch, "noise": spec["noise"], "run": spec["run"],
                  "num_examples": len(dataset["train_labels"])}
    return result, model


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
    name = f"scoring-train {spec['dataset']} {spec['model']['arch']} noise={spec['noise']} seed={spec['run']}"
    result, _ = run_training(spec, dataset, labels, subset, name, job_tags(args), args.out_dir,
                             save_epochs=spec["save_epochs"], state_epochs=spec["state_epochs"], trackers=trackers)
    values = {"forgetting": trackers["forgetting"].score(spec["never_learned"]), "aum": trackers["aum"].score()}
    for score, path in (("forgetting", args.forgetting), ("aum", args.aum)):
        results.write_scores(path, subset, labels, {"score": values[score]},
                             {"score": score, "seed": spec["run"], "runs": [result["run_id"]]})
        tracking.log_artifact(path, run_id=result["run_id"])
    results.write_json(result, Path(args.out_dir) / "result.json")


def cmd_score(args):
    """GraNd or EL2N of every training example from one checkpoint, as one MLflow run."""
    spec = json.loads(args.spec)
    device = job_device(spec)
    dataset, labels = load_study_data(args.dataset, args.labels)
    model = load_checkpoint(args.checkpoint, spec["arch"]).to(device)
    images = data.normalize(dataset["train_images"], dataset["mean"], dataset["std"], model.memory_format)
    trained_by = results.read_json(args.train_result)["run_id"]
    name = f"score {spec['kind']}@{spec['epoch']} {spec['dataset']} {spec['arch']} noise={spec['noise']} seed={spec['run']}"
    with tracking.job_run(spec["tracking"]["uri"], spec["tracking"]["experiment"], name, spec,
                          job_tags(args, [trained_by])) as run:
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
                          f"score input_norm {spec['dataset']} noise={spec['noise']}", spec, job_tags(args)) as run:
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
    name = (f"retrain {spec['model']['arch']} {method} keep={keep}{position} rep={spec['run']} "
            f"noise={spec['noise']} {spec['dataset']}")
    result, _ = run_training(spec, dataset, labels, subset, name, job_tags(args, consumed), out_dir,
                             artifacts=[subset_file])
    results.write_json({**result, "method": method, "keep": keep, "selection": spec["selection"],
                        "score_runs": consumed}, out_dir / "result.json")


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
    name = f"ntk-velocity {spec['dataset']} {spec['arch']} e{spec['epoch']} noise={spec['noise']}"
    with tracking.job_run(spec["tracking"]["uri"], spec["tracking"]["experiment"], name, spec,
                          job_tags(args, consumed)):
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
    name = (f"lmc-child {spec['dataset']} {spec['model']['arch']} spawn=e{spec['spawn_epoch']} "
            f"child={spec['child']} noise={spec['noise']}")
    subset = torch.arange(len(labels))
    result, model = run_training(spec, dataset, labels, subset, name, job_tags(args, [parent]), args.out_dir,
                                 data_seed=data_seed, start_state=state)
    results.save_tensors(checkpoint(model, spec["model"]["arch"], spec["model"]["width"], len(dataset["classes"]),
                                    None), Path(args.out_dir) / "final.pt")
    results.write_json({**result, "spawn_epoch": spec["spawn_epoch"], "child": spec["child"], "parent": parent},
                       Path(args.out_dir) / "result.json")


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
    name = f"lmc-barrier {spec['dataset']} {spec['arch']} noise={spec['noise']}"
    rows = []
    with tracking.job_run(spec["tracking"]["uri"], spec["tracking"]["experiment"], name, spec,
                          job_tags(args, consumed)):
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
    p.add_argument("--out-dir", required=True, help="folder for the figures and tables")
    p.add_argument("--html", required=True)

    p = command("estimate", cmd_estimate, "jobs and GPU-hours per experiment of a config (a dry run)")
    p.add_argument("--configfile", default="config.yaml")
    p.add_argument("more_configfiles", nargs="*", help="more config files merged over it")

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError, FloatingPointError) as error:
        if os.environ.get("DATADIET_TRACEBACK"):
            raise
        # DataError is a ValueError: bad inputs end with one line naming them, not a traceback.
        print(f"datadiet {args.command}: error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as stop:  # SIGTERM (preemption, Snakemake or Slurm stopping the job) or Ctrl-C
        if os.environ.get("DATADIET_TRACEBACK"):
            raise
        print(f"datadiet {args.command}: {stop or 'interrupted'}; the same command resumes from the last saved state",
              file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
