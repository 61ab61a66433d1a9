"""The study's vocabulary: scores and selection methods, parsed, written and shown in one place.

A score is one counted over a run (`forgetting`, `aum`), `input_norm` or `<kind>_e<epoch>` for a
checkpoint score (`grand`, `el2n`, ...). A method is `full`, `random` or a score-based selection:
`[<prefix>-]<score>[-from-<arch>]` (a plain score keeps by the config's pruning.strategy, the hardest by
default; `easy-`: keeps the easiest, whatever the strategy; `ccs-`: coverage-centric; `-from-<arch>`: the
subset another architecture's scores chose). The kinds of score and of selection come from
`datadiet.registry`; rules, jobs, the report, the claims and the estimate all read names through `Score`
and `Method`.
"""

import re
from dataclasses import dataclass

from ..registry import AT_CHECKPOINT, BY_PREFIX, OF_THE_DATA, OVER_A_RUN, SELECTIONS

ARCH = r"resnet18|resnet50|airbench"
AT_EPOCH = tuple(AT_CHECKPOINT)  # scores of a checkpoint: written <kind>_e<epoch>
WHOLE_RUN = tuple(OVER_A_RUN)  # scores tracked over a whole training run
WHOLE = (*WHOLE_RUN, *OF_THE_DATA)
SCORE = rf"{'|'.join(WHOLE)}|(?:{'|'.join(AT_EPOCH)})_e\d+"
# Scores computed once per scoring seed, then averaged (input_norm needs no training).
SEEDED = rf"{'|'.join(WHOLE_RUN)}|(?:{'|'.join(AT_EPOCH)})_e\d+"
PREFIX = "|".join(f"{prefix}-" for prefix in BY_PREFIX)
METHOD = rf"full|random|(?:{PREFIX})?(?:{SCORE})(?:-from-(?:{ARCH}))?"
SHOWN = {kind: score.label for kind, score in AT_CHECKPOINT.items()} | OVER_A_RUN | OF_THE_DATA


@dataclass(frozen=True)
class Score:
    kind: str  # a name of registry.AT_CHECKPOINT, OVER_A_RUN or OF_THE_DATA
    epoch: int | None = None  # the checkpoint it is taken at (checkpoint scores only)

    @classmethod
    def parse(cls, name):
        if not re.fullmatch(SCORE, name):
            expected = ", ".join((*WHOLE, *(f"{kind}_e<N>" for kind in AT_EPOCH)))
            raise ValueError(f"unknown score {name!r}: expected {expected}")
        kind, _, epoch = name.rpartition("_e") if name.startswith(AT_EPOCH) else (name, "", "")
        return cls(kind, int(epoch) if epoch else None)

    def __str__(self):
        return self.kind if self.epoch is None else f"{self.kind}_e{self.epoch}"

    @property
    def label(self):
        """As the paper writes it: EL2N@20."""
        return SHOWN[self.kind] + ("" if self.epoch is None else f"@{self.epoch}")


@dataclass(frozen=True)
class Method:
    """How a retraining run's subset is chosen: `kind` is full, random, score (keeps by the config's
    pruning.strategy, `direction`) or a method prefix of registry.SELECTIONS (easy, ccs, ...)."""

    kind: str = "random"
    score: Score | None = None
    source_arch: str | None = None  # transfer: the architecture whose scores chose the subset
    direction: str = "keep_max"  # from the config's pruning.strategy, not the name

    @classmethod
    def parse(cls, name, direction="keep_max"):
        if not re.fullmatch(METHOD, name):
            raise ValueError(
                f"unknown selection method {name!r}: expected full, random or [{PREFIX}]<score>[-from-<arch>]"
            )
        if name in ("full", "random"):
            return cls(name)
        rest, _, source = name.partition("-from-")
        prefix, _, score = rest.partition("-") if rest.startswith(tuple(f"{p}-" for p in BY_PREFIX)) else ("", "", rest)
        return cls(prefix or "score", Score.parse(score), source or None, direction)

    def __str__(self):
        if self.score is None:
            return self.kind
        prefix = "" if self.kind == "score" else f"{self.kind}-"
        return prefix + str(self.score) + (f"-from-{self.source_arch}" if self.source_arch else "")

    @property
    def selected_by(self):
        """The name of registry.SELECTIONS that chooses the subset."""
        if self.score is None:
            return "random"
        return self.direction if self.kind == "score" else BY_PREFIX[self.kind]

    @property
    def label(self):
        """As the paper writes it: CCS(EL2N@20), EL2N@20 from resnet50; EL2N@20 easiest (keep_min)."""
        if self.score is None:
            return str(self)
        shown = (
            self.score.label if self.kind == "score" else SELECTIONS[self.selected_by].shown.format(self.score.label)
        )
        return shown + (f" from {self.source_arch}" if self.source_arch else "")

    def selection(self, options):
        """The selection spec a retraining job gets: its kind and that kind's options, taken from
        `options` ({option: value}, the config's section of that kind)."""
        kind = self.selected_by
        return {"kind": kind, **{name: options[kind][name] for name in SELECTIONS[kind].options}}


def window_method(score):
    """The method a sliding-window run records: window-<score>."""
    return f"window-{score}"


def label(name):
    """Any method or score name as the paper writes it ('window-el2n_e1' -> 'window(EL2N@1)')."""
    if name.startswith("window-"):
        return f"window({label(name.removeprefix('window-'))})"
    return Method.parse(name).label if re.fullmatch(METHOD, name) else name


def run_label(name):
    """As MLflow run names write it: 'ccs-el2n_e2' -> 'ccs-el2n@2'."""
    return re.sub(r"_e(\d+)", r"@\1", name)
