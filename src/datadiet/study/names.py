"""The study's vocabulary: scores and selection methods, parsed, written and shown in one place.

A score is `forgetting`, `aum`, `input_norm` or `<grand|el2n>_e<epoch>`. A method is `full`, `random`
or a score-based selection: `[ccs-|easy-]<score>[-from-<arch>]` (a plain score keeps by the config's
pruning.strategy, the hardest by default; `easy-`: keeps the easiest, whatever the strategy; CCS:
coverage-centric; `-from-<arch>`: the subset another architecture's scores chose). Rules, jobs, the
report, the claims and the estimate all read names through `Score` and `Method`, so a new score or
method is written here once.
"""

import re
from dataclasses import dataclass

ARCH = r"resnet18|resnet50|airbench"
AT_EPOCH = ("grand", "el2n")  # scores of a checkpoint: written <kind>_e<epoch>
WHOLE_RUN = ("forgetting", "aum")  # scores tracked over a whole training run
SCORE = rf"forgetting|aum|input_norm|(?:{'|'.join(AT_EPOCH)})_e\d+"
# Scores computed once per scoring seed, then averaged (input_norm needs no training).
SEEDED = rf"{'|'.join(WHOLE_RUN)}|(?:{'|'.join(AT_EPOCH)})_e\d+"
METHOD = rf"full|random|(?:ccs-|easy-)?(?:{SCORE})(?:-from-(?:{ARCH}))?"
SHOWN = {"el2n": "EL2N", "grand": "GraNd", "input_norm": "input norm", "aum": "AUM", "forgetting": "forgetting"}


@dataclass(frozen=True)
class Score:
    kind: str  # grand, el2n, forgetting, aum or input_norm
    epoch: int | None = None  # the checkpoint it is taken at (grand and el2n only)

    @classmethod
    def parse(cls, name):
        if not re.fullmatch(SCORE, name):
            raise ValueError(f"unknown score {name!r}: expected forgetting, aum, input_norm or grand_e<N>/el2n_e<N>")
        kind, _, epoch = name.partition("_e") if name.startswith(AT_EPOCH) else (name, "", "")
        return cls(kind, int(epoch) if epoch else None)

    def __str__(self):
        return self.kind if self.epoch is None else f"{self.kind}_e{self.epoch}"

    @property
    def label(self):
        """As the paper writes it: EL2N@20."""
        return SHOWN[self.kind] + ("" if self.epoch is None else f"@{self.epoch}")


@dataclass(frozen=True)
class Method:
    """How a retraining run's subset is chosen."""

    score: Score | None = None  # None: random (or full, with keep 1)
    full: bool = False
    ccs: bool = False
    easy: bool = False  # keeps the lowest scores (keep_min) whatever the strategy
    source_arch: str | None = None  # transfer: the architecture whose scores chose the subset
    direction: str = "keep_max"  # from the config's pruning.strategy, not the name

    @classmethod
    def parse(cls, name, direction="keep_max"):
        if not re.fullmatch(METHOD, name):
            raise ValueError(
                f"unknown selection method {name!r}: expected full, random or [ccs-|easy-]<score>[-from-<arch>]"
            )
        if name in ("full", "random"):
            return cls(full=name == "full")
        rest, _, source = name.partition("-from-")
        prefix, _, score = rest.rpartition("-") if rest.startswith(("ccs-", "easy-")) else ("", "", rest)
        easy = prefix == "easy"
        return cls(
            Score.parse(score),
            ccs=prefix == "ccs",
            easy=easy,
            source_arch=source or None,
            direction="keep_min" if easy else direction,
        )

    def __str__(self):
        if self.score is None:
            return "full" if self.full else "random"
        prefix = "ccs-" if self.ccs else "easy-" if self.easy else ""
        return prefix + str(self.score) + (f"-from-{self.source_arch}" if self.source_arch else "")

    @property
    def label(self):
        """As the paper writes it: CCS(EL2N@20), EL2N@20 from resnet50; EL2N@20 easiest (keep_min)."""
        if self.score is None:
            return str(self)
        shown = f"CCS({self.score.label})" if self.ccs else self.score.label
        shown += " easiest" if self.easy else ""
        return shown + (f" from {self.source_arch}" if self.source_arch else "")

    def selection(self, ccs_options):
        """The selection spec a retraining job gets: random, ccs (with its options) or the direction."""
        if self.score is None:
            return {"kind": "random"}
        if self.ccs:
            return {"kind": "ccs", **ccs_options}
        return {"kind": self.direction}


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
