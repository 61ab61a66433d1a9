"""The paper's training loop, airbench-style: the whole training set is one uint8 tensor, batches
are gathered and augmented on tensors, and the run can stop and resume at any epoch boundary with
bit-identical results (model, optimizer, schedule, RNG and score-tracker state are all saved).

A run can also start from the state of another run at some epoch (a "spawn point", for linear mode
connectivity): it continues that run's model, optimizer and schedule with its own data order.
"""
import hashlib
import io
import math
import os
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from . import data, models, results


@dataclass
class TrainConfig:
    epochs: int = 200  # epochs of the FULL training set; the step budget is derived from it
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4  # coupled, on every parameter (BatchNorm included), as the official code
    lr_milestones: tuple = (0.3, 0.6, 0.8)  # fractions of the run: epochs 60/120/160 of 200
    lr_gamma: float = 0.2
    budget: str = "steps"  # "steps": subsets train as many steps as full data; "epochs": as many epochs
    crop_per_batch: bool = False  # True: one crop offset per batch, as the official TF code


def run_seeds(run):
    """Seeds of independent run `run`, as in the official code."""
    return {"model": 42 + run * 424242, "data": 4242 + run * 424242, "subset": 4426 + run * 424242}


def init_model(arch, num_classes, width, seed):
    torch.manual_seed(seed)
    return models.build(arch, num_classes, width)


def total_steps(cfg, full_size, train_size):
    """Optimizer steps for a run on `train_size` examples of a `full_size` training set.

    The last partial batch of every epoch is dropped, as in the official code.
    """
    if train_size < cfg.batch_size:
        raise ValueError(f"{train_size} training examples are fewer than one batch of {cfg.batch_size}")
    if cfg.budget == "steps":
        return cfg.epochs * (full_size // cfg.batch_size)
    if cfg.budget == "epochs":
        return cfg.epochs * (train_size // cfg.batch_size)
    raise ValueError(f"budget must be 'steps' or 'epochs', got {cfg.budget!r}")


def epoch_count(steps, train_size, batch_size):
    """Passes over the training set that `steps` steps take (the last one may be partial)."""
    return math.ceil(steps / (train_size // batch_size))


@dataclass
class TrainSet:
    images: torch.Tensor  # uint8 [N, 3, H, W]
    labels: torch.Tensor  # int64 [N] (possibly noisy)
    mean: torch.Tensor
    std: torch.Tensor


@torch.no_grad()
def evaluate(model, images, labels, mean, std, batch_size=1000):
    """Loss and accuracy in eval mode on un-augmented images."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss, correct = 0.0, 0
    for start in range(0, len(images), batch_size):
        x = data.normalize(images[start : start + batch_size].to(device), mean, std, model.memory_format)
        y = labels[start : start + batch_size].to(device)
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    model.train(was_training)
    return {"loss": loss / len(images), "accuracy": correct / len(images)}


def checkpoint(model, arch, width, num_classes, epoch):
    return {"model": model.state_dict(), "arch": arch, "width": width, "num_classes": num_classes, "epoch": epoch}


def load_checkpoint(path, arch=None):
    """A model saved by `checkpoint`, rebuilt; a clear error if it is of another architecture."""
    ckpt = results.load_tensors(path)
    if arch is not None and ckpt["arch"] != arch:
        raise ValueError(f"checkpoint {path} is a {ckpt['arch']}, expected {arch}")
    model = models.build(ckpt["arch"], ckpt["num_classes"], ckpt["width"])
    model.load_state_dict(ckpt["model"])
    return model


class Callback:
    """Hooks a training run reports through; the loop itself knows nothing of logging or files."""

    def on_epoch_end(self, epoch, step, metrics):
        pass

    def on_checkpoint(self, epoch, model):
        pass

    def on_state(self, epoch, state):
        """`state`: a CPU copy of the training state, usable as another run's `start_state`."""
        pass


def _cpu_copy(state):
    """A deep copy on the CPU, exactly what saving and loading the resume file gives (the schedule's
    milestones must stay a Counter, so a plain recursive tensor copy would not do)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, map_location="cpu", weights_only=False)


def _digest(tensors):
    """sha256 of the bytes of a state dict's tensors: tells spawn points of different parents apart."""
    digest = hashlib.sha256()
    for name, tensor in tensors.items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def train(model, train_set, cfg, data_seed, steps, test=None, save_epochs=(), state_path=None,
          callbacks=(), trackers=None, state_epochs=(), start_state=None, generator_device="cpu",
          report_every=None, autocast=False):
    """Train `model` for `steps` optimizer steps (in all, counting those of `start_state`).

    `trackers`: {name: tracker} (scores.ForgettingTracker, scores.AUMTracker), all updated on every
    step with the train-mode logits of the augmented batch and the training labels; returned.
    `save_epochs`: epochs (0 = before any step) at which callbacks get `on_checkpoint`.
    `state_epochs`: epochs (0 = before any step) at which callbacks get `on_state` with the full
    training state (model, optimizer, schedule, epoch, step).
    `start_state`: such a state; the run continues from it with a FRESH data order from `data_seed`
    and fresh trackers (a child spawned from a parent run).
    `state_path`: where the full training state is saved at every report; if it exists when the
    run starts and was saved by this very run, the run resumes from it (preemption-safe).
    `test`: optional (images, labels) evaluated at every report.
    `report_every`: report (evaluate `test`, call `on_epoch_end`, save the state) at the end of the
    first epoch after every `report_every` steps, and after the last; default every epoch. A small
    subset trained for the steps of full data has many short epochs, and reporting after each of
    them would cost more than the training.
    `autocast`: forward and loss in bfloat16 autocast (the GPU path; weights and optimizer stay float32).
    """
    device = next(model.parameters()).device
    images, labels = train_set.images.to(device), train_set.labels.to(device)
    n = len(images)
    steps_per_epoch = n // cfg.batch_size
    epochs = epoch_count(steps, n, cfg.batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    milestones = [round(f * steps) for f in cfg.lr_milestones]
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=cfg.lr_gamma)

    def training_state(epoch, step):
        # Live tensors, not copies: save or copy before training goes on.
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(), "epoch": epoch, "step": step}

    generator = torch.Generator(generator_device).manual_seed(data_seed)
    trackers = {} if trackers is None else trackers
    start_epoch, step = 0, 0

    # A saved state is resumed only if it belongs to this very run (same schedule, data, seed, trackers
    # and spawn point: a child's digest of its start weights tells apart children of different parents).
    start = None if start_state is None else {
        "epoch": start_state["epoch"], "step": start_state["step"], "model": _digest(start_state["model"])}
    run_key = {"config": asdict(cfg), "steps": steps, "data_seed": data_seed, "train_size": n,
               "trackers": sorted(trackers), "start": start}
    state = torch.load(state_path, map_location="cpu", weights_only=False) if (
        state_path and os.path.exists(state_path)) else None
    if state is not None and state["run_key"] != run_key:
        print(f"ignoring {state_path}: it was saved by a run with other settings", flush=True)
        state = None
    if state is not None:
        print(f"resuming from {state_path} at epoch {state['epoch']}, step {state['step']}", flush=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])  # a CPU byte tensor for every device's generator
        for name, tracker in trackers.items():
            tracker.load_state_dict(state["trackers"][name])
        start_epoch, step = state["epoch"], state["step"]
    elif start_state is not None:
        # Optimizer and schedule states carry their hyperparameters and milestones: a parent with
        # other settings would silently impose its own on the child.
        mine, theirs = schedule.state_dict(), start_state["schedule"]
        ours, its = optimizer.param_groups[0], start_state["optimizer"]["param_groups"][0]
        if (any(mine[k] != theirs[k] for k in ("milestones", "gamma", "base_lrs"))
                or any(ours[k] != its[k] for k in ("momentum", "nesterov", "weight_decay"))):
            raise ValueError("start_state was saved by a run with another optimizer, schedule or step budget")
        if start_state["step"] != start_state["epoch"] * steps_per_epoch or start_state["step"] > steps:
            raise ValueError(f"start_state (epoch {start_state['epoch']}, step {start_state['step']}) is not an "
                             f"epoch boundary of this run ({steps_per_epoch} steps an epoch, {steps} in all)")
        # A copy: on the CPU the optimizer adopts the given momentum tensors and would update the
        # caller's start_state in place, spoiling it for the next child.
        start_state = _cpu_copy(start_state)
        model.load_state_dict(start_state["model"])
        optimizer.load_state_dict(start_state["optimizer"])
        schedule.load_state_dict(start_state["schedule"])
        start_epoch, step = start_state["epoch"], start_state["step"]
    else:
        if 0 in save_epochs:
            for cb in callbacks:
                cb.on_checkpoint(0, model)
        if 0 in state_epochs:
            snapshot = _cpu_copy(training_state(0, 0))
            for cb in callbacks:
                cb.on_state(0, snapshot)

    report_every = report_every or steps_per_epoch
    reported_step = step
    loss_sum, correct_sum, seen = 0.0, 0, 0  # since the last report
    model.train()
    for epoch in range(start_epoch + 1, epochs + 1):
        order = torch.randperm(n, generator=generator, device=generator_device).to(device)
        for b in range(min(steps_per_epoch, steps - step)):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            x = data.augment(images[idx], generator, crop_per_batch=cfg.crop_per_batch)
            x = data.normalize(x, train_set.mean, train_set.std, model.memory_format)
            y = labels[idx]
            with torch.autocast(device.type, torch.bfloat16, enabled=autocast):
                logits = model(x)
                loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}: training diverged")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            for tracker in trackers.values():
                tracker.update(idx, logits.detach(), y)
            correct = logits.argmax(1) == y
            loss_sum += loss.item() * len(y)
            correct_sum += correct.sum().item()
            seen += len(y)
        if epoch in save_epochs:
            for cb in callbacks:
                cb.on_checkpoint(epoch, model)
        if epoch in state_epochs:
            snapshot = _cpu_copy(training_state(epoch, step))
            for cb in callbacks:
                cb.on_state(epoch, snapshot)
        if epoch < epochs and step // report_every == reported_step // report_every:
            continue
        metrics = {"train_loss": loss_sum / seen, "train_accuracy": correct_sum / seen,
                   "lr": optimizer.param_groups[0]["lr"]}
        loss_sum, correct_sum, seen, reported_step = 0.0, 0, 0, step
        if test is not None:
            result = evaluate(model, *test, train_set.mean, train_set.std)
            metrics.update(test_loss=result["loss"], test_accuracy=result["accuracy"])
            model.train()
        for cb in callbacks:
            cb.on_epoch_end(epoch, step, metrics)
        if state_path:
            results.save_tensors({**training_state(epoch, step), "generator": generator.get_state(),
                                  "trackers": {name: t.state_dict() for name, t in trackers.items()},
                                  "run_key": run_key}, state_path)
    return trackers
