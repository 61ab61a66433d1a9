"""Side-by-side timing: every goal is a ratio of two things measured in the same run, interleaved,
so that a noisy shared machine slows both alike."""

import statistics
import time
from dataclasses import dataclass


@dataclass
class Entry:
    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    goal: str = ""  # e.g. ">= 2" on the ratio, or "<= 10" on the value
    note: str = ""

    @property
    def ratio(self):
        return None if self.value is None or not self.baseline else self.value / self.baseline

    def met(self):
        """True/False against the goal, None when there is none or nothing was measured."""
        if not self.goal:
            return None
        measured = self.value if self.goal.startswith("<=") or self.baseline is None else self.ratio
        if measured is None:
            return None
        op, target = self.goal.split()
        return measured >= float(target) if op == ">=" else measured <= float(target)

    def as_json(self):
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "goal": self.goal,
            "met": self.met(),
            "note": self.note,
        }


def rates(candidates, items, repeats=5, warmup=1):
    """items/s of each candidate (name -> function doing `items` items), the median of `repeats`
    interleaved rounds after `warmup` untimed ones."""
    for run in candidates.values():
        for _ in range(warmup):
            run()
    seconds = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return {name: items / statistics.median(s) for name, s in seconds.items()}
