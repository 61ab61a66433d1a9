"""Training-dynamics steps: NTK velocity of score-sorted blocks, the children of linear mode
connectivity, and the error barriers between them."""

import time
from pathlib import Path

import pandas as pd
import torch

from ... import data, dynamics, selection
from ...models import checkpoint, load_checkpoint
from ...recipe import run_seeds
from ...runtime import files, hardware, tracking
from . import tracked


def ntk_velocity(args):
    """NTK velocity of score-sorted blocks of examples between the checkpoints at t and t+1."""
    spec = args.spec
    device = hardware.device(args.threads, args.device)
    dataset, labels = tracked.load_data(args)
    before, after = (load_checkpoint(path, spec["arch"]).to(device) for path in (args.before, args.after))
    images = data.normalize(dataset["train_images"], dataset["mean"], dataset["std"], before.memory_format)
    mean = files.read_mean_scores(args.scores, len(labels))
    order = selection.ascending_order(mean)
    size = spec["block_size"]
    blocks = dynamics.measured_blocks(len(order), size, spec["blocks"])
    consumed = [files.read_json(Path(args.before).parent / "result.json")["run_id"]]
    name = f"ntk-velocity e{spec['epoch']} noise={spec['noise']} {spec['dataset']} {spec['arch']}"
    with tracked.run(args, name, spec, args.out, consumed, device):
        start = time.time()
        velocity = dynamics.ntk_velocity(
            before, after, images, order, size, chunk_size=spec["chunk_size"], blocks=blocks
        )
        print(f"{len(blocks)} blocks of {size} in {time.time() - start:.1f} s")
        corrupted = torch.zeros(len(labels), dtype=torch.bool)
        corrupted[files.load_tensors(args.labels)["corrupted"]] = True
        rows = []
        for b, v in zip(blocks, velocity.tolist()):
            block = order[b * size : (b + 1) * size]
            rows.append(
                {
                    "block": b,
                    "first_rank": b * size,
                    "velocity": v,
                    "mean_score": mean[block].numpy().mean(),
                    "corrupted_fraction": corrupted[block].float().mean().item(),
                }
            )
        out = pd.DataFrame(rows).assign(epoch=spec["epoch"], noise=spec["noise"], num_examples=len(labels))
        files.write_text(out.to_csv(index=False), args.out)
        tracking.log_artifact(args.out)


def lmc_child(args):
    """A child of linear mode connectivity: a parent's state at the spawn epoch, trained to the end on
    its own data order. The spec's run is the parent's scoring seed."""
    spec = args.spec
    dataset, labels = tracked.load_data(args)
    state = torch.load(args.spawn, map_location="cpu", weights_only=False)
    parent = files.read_json(args.parent)["run_id"]
    data_seed = dynamics.child_data_seed(run_seeds(spec["run"])["data"], spec["child"])
    name = (
        f"lmc-child parent={spec['run']} spawn=e{spec['spawn_epoch']} child={spec['child']} "
        f"noise={spec['noise']} {spec['dataset']} {spec['model']['arch']}"
    )
    training = tracked.Training(args, spec, dataset, labels, torch.arange(len(labels)), data_seed=data_seed)

    def write_model(result, model):
        final = checkpoint(model, training.arch, training.width, training.num_classes, None)
        files.save_tensors(final, Path(args.out_dir) / "final.pt")
        return {"spawn_epoch": spec["spawn_epoch"], "child": spec["child"], "parent": parent}

    tracked.run_training(training, name, args.out_dir, [parent], start_state=state, outputs=write_model)


def lmc_barrier(args):
    """Error barrier between the two children of every parent and spawn epoch, on high-, low-score and
    random sets; BatchNorm statistics re-estimated on training images or interpolated (spec["bn"])."""
    spec = args.spec
    device = hardware.device(args.threads, args.device)
    dataset, labels = tracked.load_data(args)
    sets = dynamics.example_sets(files.read_mean_scores(args.scores, len(labels)), spec["set_size"], seed=0)
    # Preprocessed once for every pair (all children share one architecture).
    memory_format = load_checkpoint(args.children[0], spec["arch"]).memory_format
    train = dataset["train_images"]

    def normalized(index):
        return data.normalize(train[index], dataset["mean"], dataset["std"], memory_format)

    inputs = {name: (normalized(index), labels[index]) for name, index in sets.items()}
    bn_index = torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[: spec["bn_images"]]
    bn_images = normalized(bn_index.sort().values) if spec["bn"] == "reestimate" else None
    children = {}
    for path, result_path in zip(args.children, args.results):
        child = files.read_json(result_path)
        children.setdefault((child["run"], child["spawn_epoch"]), {})[child["child"]] = (path, child["run_id"])
    consumed = [run_id for pair in children.values() for _, run_id in pair.values()]
    name = f"lmc-barrier noise={spec['noise']} {spec['dataset']} {spec['arch']}"
    with tracked.run(args, name, spec, args.out, consumed, device):
        rows = [
            row
            for parent, spawn in sorted(children)
            for row in barriers(spec, parent, spawn, children[parent, spawn], inputs, bn_images, device)
        ]
        table = pd.DataFrame(rows).assign(
            noise=spec["noise"], dataset=spec["dataset"], arch=spec["arch"], bn=spec["bn"]
        )
        files.write_text(table.to_csv(index=False), args.out)
        tracking.log_artifact(args.out)


def barriers(spec, parent, spawn, pair, inputs, bn_images, device):
    """One row per example set: the barrier between the two children of `parent` spawned at `spawn`."""
    (path_a, _), (path_b, _) = pair[0], pair[1]
    model = load_checkpoint(path_a, spec["arch"]).to(device)
    # A copy: error_barrier loads interpolations into `model`, which would overwrite a view.
    state_a = {k: v.clone() for k, v in model.state_dict().items()}
    state_b = load_checkpoint(path_b, spec["arch"]).state_dict()
    rows = []
    for set_name, (images, set_labels) in inputs.items():
        out = dynamics.error_barrier(
            model, state_a, state_b, images, set_labels, spec["alphas"], bn_images, spec["bn_batch_size"]
        )
        rows.append(
            {
                "parent": parent,
                "spawn_epoch": spawn,
                "set": set_name,
                "barrier": out["barrier"],
                "error_a": out["error_a"],
                "error_b": out["error_b"],
                **{f"error_alpha{a}": e for a, e in out["errors"].items()},
            }
        )
        print(f"parent {parent} spawn e{spawn} {set_name}: barrier {out['barrier']:.4f}")
        tracking.log_metrics({f"barrier_{set_name}_parent{parent}": out["barrier"]}, step=spawn)
    return rows
