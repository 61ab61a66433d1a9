"""The paper's training loop, airbench-style: the whole training set is one uint8 tensor, batches
are gathered and augmented on tensors, and the run can stop and resume at any epoch boundary with
bit-identical results (model, optimizer, schedule, RNG and score-tracker state are all saved).

A run can also start from the state of another run at some epoch (a "spawn point", for linear mode
connectivity): it continues that run's model, optimizer and schedule with its own data order.
"""

import contextlib
import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from . import data, models
from .recipe import (
    TrainConfig as TrainConfig,  # the API: datadiet.train.TrainConfig
    epoch_count,
)
from .resume import copy_where_it_is, cpu_copy, fresh_state, resumed_state, run_key, saved_by_this_run, spawned_state
from .runtime import files, hardware


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
            self.unwritten = copy_where_it_is(state)

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


@dataclass(frozen=True)
class Hooks:
    """What a run tells the outside and when; the loop itself knows nothing of logging or files.

    `callbacks`: Callbacks, called in order. `checkpoint_epochs` / `spawn_epochs`: epochs (0 = before any
    step) at which they get `on_checkpoint` (the model, for scores) / `on_state` (the full training state:
    model, optimizer, schedule, epoch, step; a linear-mode-connectivity child spawns from it).
    `test`: optional (images, labels) evaluated at every report. `report_every`: report (evaluate `test`,
    call `on_epoch_end`, save the state if due) at the first epoch's end after every `report_every` steps,
    and after the last; default every epoch (a small subset has many short epochs).
    `state_path`: the resume file (the full training state), written at a report `state_every_s` s after
    the last write (0: every report), at the end and on a stop (the last report's); a run resumes from
    one it saved."""

    callbacks: tuple = ()
    checkpoint_epochs: tuple = ()
    spawn_epochs: tuple = ()
    test: tuple | None = None
    report_every: int | None = None
    state_path: str | None = None
    state_every_s: float = 0


def train(model, train_set, cfg, data_seed, steps, hooks=Hooks(), trackers=None, start_state=None, stop_epoch=None):
    """Train `model` for `steps` optimizer steps (in all, counting those of `start_state`), telling `hooks`.

    `trackers`: {name: tracker} (scores.ForgettingTracker, scores.AUMTracker), all updated on every
    step with the train-mode logits of the augmented batch and the training labels; returned.
    `start_state`: a training state (see Hooks.spawn_epochs); the run continues from it with a FRESH data
    order from `data_seed` and fresh trackers (a child spawned from a parent run).
    `stop_epoch`: stop after this epoch, on the schedule of `steps` steps (its checkpoints are the whole run's).
    """
    trackers = {} if trackers is None else trackers
    _fit_to_the_data(model, train_set)
    key = run_key(cfg, steps, data_seed, len(train_set.images), trackers, start_state, stop_epoch)
    state = fresh_state(model, cfg, steps, data_seed, trackers)
    saved = saved_by_this_run(hooks.state_path, key)
    if saved is not None:
        state = resumed_state(state, saved)
    elif start_state is not None:
        state = spawned_state(state, start_state, len(train_set.images) // cfg.batch_size, steps)
    else:
        _epoch_hooks(state, hooks)
    with _saving(state, hooks.state_path, key, hooks.state_every_s) as saver:
        train_from(state, train_set, cfg, steps, replace(hooks, callbacks=(*hooks.callbacks, saver)), stop_epoch)
    return trackers


def _fit_to_the_data(model, train_set):
    """A first layer set from the training images (the proxy's whitening), before anything copies the
    weights; a resumed or spawned run then loads its own over it."""
    if models.has_whitening(model):
        first = train_set.images[: models.WHITEN_IMAGES].to(next(model.parameters()).device)
        models.fit_whitening(model, data.normalize(first, train_set.mean, train_set.std, model.memory_format))


def train_from(state, train_set, cfg, steps, hooks=Hooks(), stop_epoch=None):
    """Train from `state` until `steps` steps are done (or `stop_epoch` ends), telling `hooks` as `train`
    describes."""
    device = next(state.model.parameters()).device
    # Everything a step reads lives on the model's device: a step never waits for a copy.
    train_set = TrainSet(*(t.to(device) for t in (train_set.images, train_set.labels, train_set.mean, train_set.std)))
    epochs = epoch_count(steps, len(train_set.images), cfg.batch_size)
    epochs = min(epochs, stop_epoch) if stop_epoch is not None else epochs
    report_every = hooks.report_every or len(train_set.images) // cfg.batch_size
    reported_step, sums = state.step, Sums(device)
    state.model.train()
    # Compiled, the forward pass runs as a few fused kernels; the state keeps the plain module.
    forward = CompiledOrEager(state.model) if cfg.compile else state.model
    # bf16 autocast: weights, optimizer and the classifier's logits stay float32 (models.fp32_head).
    autocast = hardware.autocast_bf16(cfg.precision, device)
    flips = first_flips(state.generator, len(train_set.labels)) if cfg.flip == "alternate" else None
    for cb in hooks.callbacks:
        cb.on_train_start(state.step)
    for epoch in range(state.epoch + 1, epochs + 1):
        frozen = cfg.whiten_bias_epochs is not None and epoch > cfg.whiten_bias_epochs
        models.freeze_whitening_bias(state.model, frozen)
        train_epoch(state, forward, train_set, cfg, steps, autocast, sums, flips)
        state.epoch = epoch
        _epoch_hooks(state, hooks, sums)
        if epoch < epochs and state.step // report_every == reported_step // report_every:
            continue
        _report(state, sums, train_set, hooks, cfg.tta)
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


def _epoch_hooks(state, hooks, sums=None):
    """`on_checkpoint` and `on_state` for the epoch `state` has just reached, if asked for (`sums`: the
    loss since the last report, checked first)."""
    if sums is not None and state.epoch in (*hooks.checkpoint_epochs, *hooks.spawn_epochs):
        sums.check_finite(state.step)
    if state.epoch in hooks.checkpoint_epochs:
        for cb in hooks.callbacks:
            cb.on_checkpoint(state.epoch, state.model)
    if state.epoch in hooks.spawn_epochs:
        snapshot = cpu_copy(state.state_dict())
        for cb in hooks.callbacks:
            cb.on_state(state.epoch, snapshot)


def _report(state, sums, train_set, hooks, tta):
    """Train metrics since the last report, and the test set's if given, to `on_epoch_end`."""
    sums.check_finite(state.step)
    metrics = {**sums.metrics(), "lr": state.optimizer.param_groups[0]["lr"]}
    if hooks.test is not None:
        result = evaluate(state.model, *hooks.test, train_set.mean, train_set.std, tta=tta)  # back in train mode after
        metrics.update(test_loss=result["loss"], test_accuracy=result["accuracy"])
    for cb in hooks.callbacks:
        cb.on_epoch_end(state.epoch, state.step, metrics)
