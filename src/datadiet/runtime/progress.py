"""Progress of long work: one line per report in a job's log, a bar on a terminal."""

import os
import time
from pathlib import Path

from tqdm import tqdm

from ..train import Callback


def seconds_since_process_start():
    """From the kernel's start time of this process (Linux), so the interpreter's own start counts."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


class PrintProgress(Callback):
    """One line per report with speed and time left; the rule's log keeps it."""

    def __init__(self, total_epochs, total_steps, batch_size, report_every):
        self.total_epochs, self.total_steps, self.batch_size = total_epochs, total_steps, batch_size
        self.report_every = report_every
        self.start, self.start_step = time.time(), None

    def on_train_start(self, step):
        # `make bench` reads this line: a job's start-up cost, imports and data included.
        print(f"first step {seconds_since_process_start():.2f} s after the process started", flush=True)

    def on_epoch_end(self, epoch, step, metrics):
        if self.start_step is None:  # a resumed run counts speed from where it resumed
            self.start_step = step - min(step, self.report_every)
        rate = (step - self.start_step) / max(time.time() - self.start, 1e-9)
        shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        print(
            f"epoch {epoch}/{self.total_epochs} step {step}/{self.total_steps} {shown} "
            f"{rate * self.batch_size:.0f} img/s, {(self.total_steps - step) / max(rate, 1e-9):.0f} s left",
            flush=True,
        )


def bar(total, desc):
    """A bar with images/s and time left on a terminal; silent where output goes to a file (a rule's
    log), which gets the one-line summary each command prints instead."""
    return tqdm(total=total, desc=desc, unit="img", unit_scale=True, disable=None, leave=False, dynamic_ncols=True)


class BarProgress(Callback):
    """A training run on a terminal: a bar of images trained, with images/s, time left and the last
    report's metrics."""

    def __init__(self, bar, batch_size):
        self.bar, self.batch_size, self.step = bar, batch_size, 0

    def on_epoch_end(self, epoch, step, metrics):
        self.bar.update((step - self.step) * self.batch_size)
        self.step = step
        self.bar.set_postfix(epoch=epoch, loss=f"{metrics['train_loss']:.3g}", acc=f"{metrics['train_accuracy']:.2f}")
