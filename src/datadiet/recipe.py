"""The training recipe: hyperparameters (one dataclass, airbench-style), the seeds of a run, its step
budget, the optimizer's parameter groups, the learning-rate schedule and Lookahead. The paper's
recipe is the default; the fast proxy's (airbench94) is a handful of its fields."""

import math
from dataclasses import dataclass

import torch


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
    test_curve: bool = False  # evaluate the test set at every report too, not only at the end
    # The fast proxy's recipe (airbench); the defaults are the paper's.
    schedule: str = "multistep"  # or "one_cycle": linear from lr_start x lr up to lr, then down to lr_end x lr
    warmup: float = 0.23  # one_cycle: fraction of the run spent rising
    lr_start: float = 0.2
    lr_end: float = 0.07
    label_smoothing: float = 0.0
    bias_lr_scale: float = 1.0  # BatchNorm parameters train at this times lr (weight decay divided by it)
    lookahead: bool = False  # every 5 steps the weights move to a slow average of themselves
    pad: int = 4  # the random crop's translation, in pixels
    flip: str = "random"  # or "alternate": each example's flip drawn once, then reversed every other epoch
    whiten_bias_epochs: int | None = None  # the whitening layer's bias trains this many epochs, then freezes
    tta: bool | str = False  # test logits: of the image (False), with its mirror (True), and "translate"d (TTA_VIEWS)
    compile: bool = False  # torch.compile the training forward pass (pays on a GPU, not on a CPU)
    precision: str = "fp32"  # or "bf16" (forward and loss under autocast), "auto" (where it pays: hardware.bf16_pays)


def run_seeds(run):
    """Seeds of independent run `run`, as in the official code."""
    return {"model": 42 + run * 424242, "data": 4242 + run * 424242, "subset": 4426 + run * 424242}


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


class Lookahead:
    """airbench's Lookahead: every 5 steps the weights (and BatchNorm statistics) move to a slow
    average of themselves, whose pull weakens as (step/steps)^3; after the last step they are the average."""

    every = 5

    def __init__(self, model, steps):
        self.steps = steps
        self.average = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    def after_step(self, model, step):
        if step % self.every and step < self.steps:
            return
        decay = 1.0 if step >= self.steps else 0.95**5 * (step / self.steps) ** 3
        with torch.no_grad():
            for name, value in model.state_dict().items():
                if name in self.average:
                    self.average[name].lerp_(value, 1 - decay)
                    value.copy_(self.average[name])

    def load_state_dict(self, average):
        for name, value in average.items():
            self.average[name].copy_(value)


def parameter_groups(model, cfg):
    """The trainable parameters; with a `bias_lr_scale`, BatchNorm's in a group of their own whose weight
    decay is divided by the scale, so that they decay per step as fast as the others."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if cfg.bias_lr_scale == 1:
        return trainable
    norms = {id(p) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()}
    return [
        {"params": [p for p in trainable if id(p) not in norms]},
        {
            "params": [p for p in trainable if id(p) in norms],
            "lr": cfg.lr * cfg.bias_lr_scale,
            "weight_decay": cfg.weight_decay / cfg.bias_lr_scale,
        },
    ]


def lr_schedule(optimizer, cfg, steps):
    """The paper's steps down at fractions of the run, or the proxy's one cycle."""
    if cfg.schedule == "multistep":
        milestones = [round(f * steps) for f in cfg.lr_milestones]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=cfg.lr_gamma)
    if cfg.schedule == "one_cycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=steps,
            pct_start=cfg.warmup,
            anneal_strategy="linear",
            cycle_momentum=False,
            div_factor=1 / cfg.lr_start,
            final_div_factor=cfg.lr_start / cfg.lr_end,
        )
    raise ValueError(f"schedule must be 'multistep' or 'one_cycle', got {cfg.schedule!r}")
