"""The state a training run carries from step to step, and how it resumes or spawns: a fresh state, one
brought back from a resume file (bit-identical to a run never stopped) and one continuing another run's
state at an epoch (a spawn point, for linear mode connectivity). A resume file is only used by the very
run that saved it (`run_key`)."""

import copy
import hashlib
import io
import os
from dataclasses import asdict, dataclass

import torch

from .recipe import Lookahead, lr_schedule, parameter_groups


def cpu_copy(state):
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
    start_state = cpu_copy(start_state)
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


def saved_by_this_run(state_path, key):
    """The resume file at `state_path` if this very run saved it, else None."""
    if not state_path or not os.path.exists(state_path):
        return None
    saved = torch.load(state_path, map_location="cpu", weights_only=False)
    if saved["run_key"] != key:
        print(f"ignoring {state_path}: it was saved by a run with other settings", flush=True)
        return None
    print(f"resuming from {state_path} at epoch {saved['epoch']}, step {saved['step']}", flush=True)
    return saved


def copy_where_it_is(value):
    """A copy of a state whose tensors stay on their device (on a GPU the copy takes no host time) and
    whose containers keep their types (the schedule's milestones stay a Counter)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        copied = copy.copy(value)
        for key, item in value.items():
            copied[key] = copy_where_it_is(item)
        return copied
    if isinstance(value, (list, tuple)):
        return type(value)(copy_where_it_is(item) for item in value)
    return value
