"""The paper's training loop, airbench-style: the whole training set is one uint8 tensor, batches
are gathered and augmented on tensors, and the run can stop and resume at any epoch boundary with
bit-identical results (model, optimizer, schedule, RNG and score-tracker state are all saved).

A run can also start from the state of another run at some epoch (a "spawn point", for linear mode
connectivity): it continues that run's model, optimizer and schedule with its own data order.
"""

import contextlib
import copy
import hashlib
import io
import math
import os
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from . import data, models
from .runtime import files, hardware


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


def init_model(arch, num_classes, width, seed, init="flax"):
    torch.manual_seed(seed)
    return models.build(arch, num_classes, width, init)


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


# Test-time augmentation, airbench's levels 0-2: the image; with its mirror image; and both again at a
# 1-pixel translation up-left and one down-right (reflect padded), weighted half and half.
TTA_VIEWS = {False: 1, True: 2, "translate": 6}


def tta_logits(model, x, tta):
    """The logits of a normalised batch `x`, averaged over the views of TTA_VIEWS[tta]."""
    if tta not in TTA_VIEWS:
        raise ValueError(f"tta must be one of {list(TTA_VIEWS)}, got {tta!r}")
    if tta is False:
        return model(x)
    mirrored = (model(x) + model(x.flip(-1))) / 2
    if tta is True:
        return mirrored
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    translated = (tta_logits(model, padded[..., :h, :w], True) + tta_logits(model, padded[..., 2:, 2:], True)) / 2
    return (mirrored + translated) / 2


@torch.no_grad()
def evaluate(model, images, labels, mean, std, batch_size=1000, tta=False):
    """Loss and accuracy in eval mode on un-augmented images (`tta`: averaged over the views of TTA_VIEWS)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss, correct = 0.0, 0
    for start in range(0, len(images), batch_size):
        x = data.normalize(images[start : start + batch_size].to(device), mean, std, model.memory_format)
        y = labels[start : start + batch_size].to(device)
        logits = tta_logits(model, x, tta)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    model.train(was_training)
    return {"loss": loss / len(images), "accuracy": correct / len(images)}


def checkpoint(model, arch, width, num_classes, epoch):
    return {"model": model.state_dict(), "arch": arch, "width": width, "num_classes": num_classes, "epoch": epoch}


def load_checkpoint(path, arch=None):
    """A model saved by `checkpoint`, rebuilt; a clear error if it is of another architecture."""
    ckpt = files.load_tensors(path)
    if arch is not None and ckpt["arch"] != arch:
        raise ValueError(f"checkpoint {path} is a {ckpt['arch']}, expected {arch}")
    model = models.build(ckpt["arch"], ckpt["num_classes"], ckpt["width"])
    model.load_state_dict(ckpt["model"])
    return model


class Callback:
    """Hooks a training run reports through; the loop itself knows nothing of logging or files."""

    def on_train_start(self, step):
        """Once per `train` call, before its first step (even when none is left to take): `step` is
        where the run starts, resumes or continues its parent."""
        pass

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


@dataclass
class TrainingState:
    """Everything a run carries from step to step; `epoch` and `step` count those already done."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator  # the data order and the augmentations
    trackers: dict
    lookahead: "Lookahead | None" = None
    epoch: int = 0
    step: int = 0

    def state_dict(self):
        """What a child run can start from. Live tensors, not copies: save or copy before training goes on."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
        }
        if self.lookahead is not None:
            state["lookahead"] = self.lookahead.average
        return state


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


def fresh_state(model, cfg, steps, data_seed, trackers):
    """The state before the first step of a `steps`-step run of `model` as it is."""
    device = next(model.parameters()).device
    # The fused kernel on a GPU (one launch for all parameters); the CPU keeps its for-loop, whose
    # numbers the tests pin.
    optimizer = torch.optim.SGD(
        parameter_groups(model, cfg),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
        fused=True if device.type == "cuda" else None,
    )
    # The generator lives where the data does: drawing on the CPU would copy to the GPU every step.
    generator = torch.Generator(device).manual_seed(data_seed)
    for tracker in trackers.values():
        tracker.to(device)
    lookahead = Lookahead(model, steps) if cfg.lookahead else None
    return TrainingState(model, optimizer, lr_schedule(optimizer, cfg, steps), generator, trackers, lookahead)


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


def resumed_state(state, saved):
    """`state`, a fresh one, brought to where the run that saved the resume file `saved` stopped."""
    state.model.load_state_dict(saved["model"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.schedule.load_state_dict(saved["schedule"])
    state.generator.set_state(saved["generator"])
    for name, tracker in state.trackers.items():
        tracker.load_state_dict(saved["trackers"][name])
    if state.lookahead is not None:
        state.lookahead.load_state_dict(saved["lookahead"])
    state.epoch, state.step = saved["epoch"], saved["step"]
    return state


def spawned_state(state, start_state, steps_per_epoch, steps):
    """`state`, a fresh one, continuing the model, optimizer and schedule of another run's `start_state`;
    its data order and trackers stay fresh."""
    # Optimizer and schedule states carry their hyperparameters and milestones: a parent with
    # other settings would silently impose its own on the child.
    ours, its = state.optimizer.param_groups[0], start_state["optimizer"]["param_groups"][0]
    if _schedule_settings(state.schedule.state_dict()) != _schedule_settings(start_state["schedule"]) or any(
        ours[k] != its[k] for k in ("momentum", "nesterov", "weight_decay")
    ):
        raise ValueError("start_state was saved by a run with another optimizer, schedule or step budget")
    if start_state["step"] != start_state["epoch"] * steps_per_epoch or start_state["step"] > steps:
        raise ValueError(
            f"start_state (epoch {start_state['epoch']}, step {start_state['step']}) is not an "
            f"epoch boundary of this run ({steps_per_epoch} steps an epoch, {steps} in all)"
        )
    # A copy: on the CPU the optimizer adopts the given momentum tensors and would update the
    # caller's start_state in place, spoiling it for the next child.
    start_state = _cpu_copy(start_state)
    state.model.load_state_dict(start_state["model"])
    state.optimizer.load_state_dict(start_state["optimizer"])
    state.schedule.load_state_dict(start_state["schedule"])
    if state.lookahead is not None:
        state.lookahead.load_state_dict(start_state["lookahead"])
    state.epoch, state.step = start_state["epoch"], start_state["step"]
    return state


def _schedule_settings(schedule_state):
    """A schedule's state without where it has got to: its milestones, rates and length."""
    progress = {"last_epoch", "_step_count", "_is_initial", "_get_lr_called_within_step", "_last_lr"}
    return {k: v for k, v in schedule_state.items() if k not in progress}


def run_key(cfg, steps, data_seed, train_size, trackers, start_state, stop_epoch):
    """What a resume file must have been saved by to be resumed: this very run (same schedule, data,
    seed, trackers and spawn point; a child's digest of its start weights tells apart children of
    different parents that spawned at the same step). `train` computes it from its own arguments."""
    start = (
        None
        if start_state is None
        else {"epoch": start_state["epoch"], "step": start_state["step"], "model": _digest(start_state["model"])}
    )
    return {
        "config": asdict(cfg),
        "steps": steps,
        "data_seed": data_seed,
        "train_size": train_size,
        "trackers": sorted(trackers),
        "start": start,
        "stop_epoch": stop_epoch,
    }


def resumes(state_path, key):
    """Whether a run of this `run_key` would resume from the resume file at `state_path` (its tensors
    stay on disk: only the key is read)."""
    if not os.path.exists(state_path):
        return False
    return torch.load(state_path, map_location="cpu", weights_only=False, mmap=True)["run_key"] == key


def _saved_by_this_run(state_path, key):
    """The resume file at `state_path` if this very run saved it, else None."""
    if not state_path or not os.path.exists(state_path):
        return None
    saved = torch.load(state_path, map_location="cpu", weights_only=False)
    if saved["run_key"] != key:
        print(f"ignoring {state_path}: it was saved by a run with other settings", flush=True)
        return None
    print(f"resuming from {state_path} at epoch {saved['epoch']}, step {saved['step']}", flush=True)
    return saved


def _copy_where_it_is(value):
    """A copy of a state whose tensors stay on their device (on a GPU the copy takes no host time) and
    whose containers keep their types (the schedule's milestones stay a Counter)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        copied = copy.copy(value)
        for key, item in value.items():
            copied[key] = _copy_where_it_is(item)
        return copied
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_where_it_is(item) for item in value)
    return value


class _SaveForResume(Callback):
    """Writes the resume file (90-190 MB for the paper's networks) at the first report `every_s` seconds
    after the last write, and on `flush()`: the state of the last report, kept as a copy until then.
    Runs after the other callbacks: a run stopped inside one of them resumes from the report before.
    Without a `state_path` it writes nothing."""

    def __init__(self, state, state_path, key, every_s):
        self.state, self.state_path, self.key, self.every_s = state, state_path, key, every_s
        self.written_at = time.monotonic()
        self.unwritten = None  # the last report's state, if the file does not hold it yet

    def on_epoch_end(self, epoch, step, metrics):
        if not self.state_path:
            return
        state = {
            **self.state.state_dict(),
            "generator": self.state.generator.get_state(),
            "trackers": {name: t.state_dict() for name, t in self.state.trackers.items()},
            "run_key": self.key,
        }
        if time.monotonic() - self.written_at >= self.every_s:
            self.unwritten = state  # live tensors: training goes on only once they are written
            self.flush()
        else:
            self.unwritten = _copy_where_it_is(state)

    def flush(self):
        """Write the last report's state if the file does not hold it yet."""
        if self.unwritten is not None:
            files.save_tensors(self.unwritten, self.state_path)
            self.written_at, self.unwritten = time.monotonic(), None


@contextlib.contextmanager
def _saving(state, state_path, key, every_s):
    """A _SaveForResume for the training inside. When that ends, or a stop (a KeyboardInterrupt: a stop
    signal, Ctrl-C) ends it early, the last report's state is written (again if a stop cut the write)."""
    saver = _SaveForResume(state, state_path, key, every_s)
    try:
        yield saver
        saver.flush()  # the whole run: a job stopped after training does not train again
    except KeyboardInterrupt:
        saver.flush()
        raise


def train(
    model,
    train_set,
    cfg,
    data_seed,
    steps,
    test=None,
    save_epochs=(),
    state_path=None,
    callbacks=(),
    trackers=None,
    state_epochs=(),
    start_state=None,
    report_every=None,
    stop_epoch=None,
    state_every_s=0,
):
    """Train `model` for `steps` optimizer steps (in all, counting those of `start_state`).

    `trackers`: {name: tracker} (scores.ForgettingTracker, scores.AUMTracker), all updated on every
    step with the train-mode logits of the augmented batch and the training labels; returned.
    `save_epochs` / `state_epochs`: epochs (0 = before any step) at which callbacks get `on_checkpoint` /
    `on_state` with the full training state (model, optimizer, schedule, epoch, step).
    `start_state`: such a state; the run continues from it with a FRESH data order from `data_seed`
    and fresh trackers (a child spawned from a parent run).
    `state_path`: the resume file (the full training state), written at a report `state_every_s` s after the last
    write (0: every report), at the end and on a stop (the last report's); a run resumes from one it saved.
    `test`: optional (images, labels) evaluated at every report.
    `report_every`: report (evaluate `test`, call `on_epoch_end`, save the state if due) at the first epoch's end after
    every `report_every` steps, and after the last; default every epoch (a small subset has many short epochs).
    `stop_epoch`: stop after this epoch, on the schedule of `steps` steps (its checkpoints are the whole run's).
    """
    trackers = {} if trackers is None else trackers
    _fit_to_the_data(model, train_set)
    key = run_key(cfg, steps, data_seed, len(train_set.images), trackers, start_state, stop_epoch)
    state = fresh_state(model, cfg, steps, data_seed, trackers)
    saved = _saved_by_this_run(state_path, key)
    if saved is not None:
        state = resumed_state(state, saved)
    elif start_state is not None:
        state = spawned_state(state, start_state, len(train_set.images) // cfg.batch_size, steps)
    else:
        _epoch_hooks(state, callbacks, save_epochs, state_epochs)
    with _saving(state, state_path, key, state_every_s) as saver:
        train_from(
            state,
            train_set,
            cfg,
            steps,
            callbacks=[*callbacks, saver],
            test=test,
            save_epochs=save_epochs,
            state_epochs=state_epochs,
            report_every=report_every,
            stop_epoch=stop_epoch,
        )
    return trackers


def _fit_to_the_data(model, train_set):
    """A first layer set from the training images (the proxy's whitening), before anything copies the
    weights; a resumed or spawned run then loads its own over it."""
    if models.has_whitening(model):
        first = train_set.images[: models.WHITEN_IMAGES].to(next(model.parameters()).device)
        models.fit_whitening(model, data.normalize(first, train_set.mean, train_set.std, model.memory_format))


def train_from(
    state,
    train_set,
    cfg,
    steps,
    callbacks=(),
    test=None,
    save_epochs=(),
    state_epochs=(),
    report_every=None,
    stop_epoch=None,
):
    """Train from `state` until `steps` steps are done (or `stop_epoch` ends), with the hooks and
    reports `train` describes."""
    device = next(state.model.parameters()).device
    # Everything a step reads lives on the model's device: a step never waits for a copy.
    train_set = TrainSet(*(t.to(device) for t in (train_set.images, train_set.labels, train_set.mean, train_set.std)))
    epochs = epoch_count(steps, len(train_set.images), cfg.batch_size)
    epochs = min(epochs, stop_epoch) if stop_epoch is not None else epochs
    report_every = report_every or len(train_set.images) // cfg.batch_size
    reported_step, sums = state.step, Sums(device)
    state.model.train()
    # Compiled, the forward pass runs as a few fused kernels; the state keeps the plain module.
    forward = CompiledOrEager(state.model) if cfg.compile else state.model
    # bf16 autocast: weights, optimizer and the classifier's logits stay float32 (models.fp32_head).
    autocast = hardware.autocast_bf16(cfg.precision, device)
    flips = first_flips(state.generator, len(train_set.labels)) if cfg.flip == "alternate" else None
    for cb in callbacks:
        cb.on_train_start(state.step)
    for epoch in range(state.epoch + 1, epochs + 1):
        frozen = cfg.whiten_bias_epochs is not None and epoch > cfg.whiten_bias_epochs
        models.freeze_whitening_bias(state.model, frozen)
        train_epoch(state, forward, train_set, cfg, steps, autocast, sums, flips)
        state.epoch = epoch
        _epoch_hooks(state, callbacks, save_epochs, state_epochs, sums)
        if epoch < epochs and state.step // report_every == reported_step // report_every:
            continue
        _report(state, sums, train_set, test, callbacks, cfg.tta)
        reported_step, sums = state.step, Sums(device)
    models.freeze_whitening_bias(state.model, False)  # scores after training take every layer's gradient


class CompiledOrEager:
    """`model` under torch.compile, or the model itself if compiling fails: Inductor builds C++ (CPU) or
    Triton (GPU) code at the first call, which needs a C compiler and Python's headers, absent from slim
    images and some compute nodes. One line says so; later runs of the process do not try again."""

    failed = None  # why compiling failed in this process, once it has

    def __init__(self, model):
        self.model = model
        self.compiled = None if CompiledOrEager.failed else torch.compile(model, dynamic=False)
        self.tried = False

    def __call__(self, x):
        if self.compiled is None:
            return self.model(x)
        if self.tried:  # compiled once: any later error is the model's, not the compiler's
            return self.compiled(x)
        self.tried = True
        try:
            return self.compiled(x)
        except Exception as error:  # torch._dynamo's and Inductor's errors share no narrower base
            CompiledOrEager.failed = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}"
            print(f"torch.compile failed, training eagerly ({CompiledOrEager.failed})", flush=True)
            self.compiled = None
            return self.model(x)


class Sums:
    """Loss, correct predictions and examples seen since the last report, kept on the device: reading
    them (`metrics`) waits for the GPU, so it happens once per report, not per step. The loss is
    summed in float64, as the Python floats it replaced, so CPU runs report the same numbers."""

    def __init__(self, device):
        self.loss = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.seen = 0

    def add(self, loss, logits, labels):
        self.loss += loss.detach().double() * len(labels)
        self.correct += (logits.argmax(1) == labels).sum()
        self.seen += len(labels)

    def check_finite(self, step):
        """A diverged run stops here, with its loss, before anything saves its weights."""
        if not torch.isfinite(self.loss):
            raise FloatingPointError(f"loss became {self.loss.item()} by step {step}: training diverged")

    def metrics(self):
        return {"train_loss": self.loss.item() / self.seen, "train_accuracy": self.correct.item() / self.seen}


def first_flips(generator, n):
    """Alternating flips (airbench): whether each of `n` examples is mirrored in the first epoch, drawn
    from the run's data seed by a generator of its own, so a resumed run draws the same."""
    own = torch.Generator().manual_seed(generator.initial_seed())
    return torch.randint(0, 2, (n,), generator=own).bool().to(generator.device)


def train_epoch(state, forward, train_set, cfg, steps, autocast, sums, flips=None):
    """One pass over a new order of the training set, cut short at `steps` steps in all, added to `sums`;
    `forward`: the model, or its compiled form; `flips`: `first_flips` (alternating: every other epoch
    mirrors them all), or None (each example's flip drawn at each step)."""
    images, labels = train_set.images, train_set.labels
    order = torch.randperm(len(images), generator=state.generator, device=images.device)
    for b in range(min(len(images) // cfg.batch_size, steps - state.step)):
        idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        flip = None if flips is None else flips[idx] ^ (state.epoch % 2 == 1)  # state.epoch: epochs done
        x = data.augment(images[idx], state.generator, cfg.pad, cfg.crop_per_batch, flip)
        x = data.normalize(x, train_set.mean, train_set.std, state.model.memory_format)
        y = labels[idx]
        with torch.autocast(images.device.type, torch.bfloat16, enabled=autocast):
            logits = forward(x)
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        state.optimizer.step()
        state.schedule.step()
        state.step += 1
        if state.lookahead is not None:
            state.lookahead.after_step(state.model, state.step)
        for tracker in state.trackers.values():
            tracker.update(idx, logits.detach(), y)
        sums.add(loss, logits, y)


def _epoch_hooks(state, callbacks, save_epochs, state_epochs, sums=None):
    """`on_checkpoint` and `on_state` for the epoch `state` has just reached, if asked for (`sums`: the
    loss since the last report, checked first)."""
    if sums is not None and state.epoch in (*save_epochs, *state_epochs):
        sums.check_finite(state.step)
    if state.epoch in save_epochs:
        for cb in callbacks:
            cb.on_checkpoint(state.epoch, state.model)
    if state.epoch in state_epochs:
        snapshot = _cpu_copy(state.state_dict())
        for cb in callbacks:
            cb.on_state(state.epoch, snapshot)


def _report(state, sums, train_set, test, callbacks, tta):
    """Train metrics since the last report, and the test set's if given, to `on_epoch_end`."""
    sums.check_finite(state.step)
    metrics = {**sums.metrics(), "lr": state.optimizer.param_groups[0]["lr"]}
    if test is not None:
        result = evaluate(state.model, *test, train_set.mean, train_set.std, tta=tta)  # back in train mode after
        metrics.update(test_loss=result["loss"], test_accuracy=result["accuracy"])
    for cb in callbacks:
        cb.on_epoch_end(state.epoch, state.step, metrics)
