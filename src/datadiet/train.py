"""The paper's training loop, airbench-style: the whole training set is one uint8 tensor, batches
are gathered and augmented on tensors, and the run can stop and resume at any epoch boundary with
bit-identical results (model, optimizer, schedule, RNG and forgetting state are all saved).
"""
import math
import os
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from . import data, models, results
from .scores import ForgettingTracker


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
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
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


def train(model, train_set, cfg, data_seed, steps, test=None, save_epochs=(), state_path=None,
          callbacks=(), forgetting=None, generator_device="cpu"):
    """Train `model` for `steps` optimizer steps; returns the forgetting tracker (or None).

    `save_epochs`: epochs (0 = before any step) at which callbacks get `on_checkpoint`.
    `state_path`: where the full training state is saved after every epoch; if it exists when the
    run starts, the run resumes from it (preemption-safe).
    `test`: optional (images, labels) evaluated after every epoch.
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
    generator = torch.Generator(generator_device).manual_seed(data_seed)
    tracker = ForgettingTracker(n) if forgetting else None
    start_epoch, step = 0, 0

    # A saved state is resumed only if it belongs to this very run (same schedule, data and seed).
    run_key = {"config": asdict(cfg), "steps": steps, "data_seed": data_seed, "train_size": n}
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
        if tracker is not None:
            tracker.load_state_dict(state["forgetting"])
        start_epoch, step = state["epoch"], state["step"]
    elif 0 in save_epochs:
        for cb in callbacks:
            cb.on_checkpoint(0, model)

    model.train()
    for epoch in range(start_epoch + 1, epochs + 1):
        order = torch.randperm(n, generator=generator, device=generator_device).to(device)
        loss_sum, correct_sum, seen = 0.0, 0, 0
        for b in range(min(steps_per_epoch, steps - step)):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            x = data.augment(images[idx], generator, crop_per_batch=cfg.crop_per_batch)
            x = data.normalize(x, train_set.mean, train_set.std, model.memory_format)
            y = labels[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}: training diverged")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            correct = logits.argmax(1) == y
            if tracker is not None:
                tracker.update(idx, correct)
            loss_sum += loss.item() * len(y)
            correct_sum += correct.sum().item()
            seen += len(y)
        metrics = {"train_loss": loss_sum / seen, "train_accuracy": correct_sum / seen,
                   "lr": optimizer.param_groups[0]["lr"]}
        if test is not None:
            result = evaluate(model, *test, train_set.mean, train_set.std)
            metrics.update(test_loss=result["loss"], test_accuracy=result["accuracy"])
            model.train()
        if epoch in save_epochs:
            for cb in callbacks:
                cb.on_checkpoint(epoch, model)
        for cb in callbacks:
            cb.on_epoch_end(epoch, step, metrics)
        if state_path:
            results.save_tensors({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "schedule": schedule.state_dict(), "generator": generator.get_state(),
                         "forgetting": tracker.state_dict() if tracker is not None else None,
                         "epoch": epoch, "step": step, "run_key": run_key}, state_path)
    return tracker
