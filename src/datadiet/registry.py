"""The kinds of score and of selection, each declared once: its name, how the paper writes it and its
options. Everything else derives from here: the study's method and score names, the schema's patterns
(a test checks them), `datadiet prune`'s choices, the score step and `estimate`. The functions are
`scores.<name>` and `selection.<name>`; this module imports neither, nor torch, so that the workflow,
which reads the study's vocabulary on every run, stays quick to start.
"""

from collections import namedtuple

# A score a model gives each example at a checkpoint, in eval mode on un-augmented images. `cost`: its
# forward and backward passes per example, in training epochs per example (for `estimate`); `options`:
# {the score step's spec key: the function's keyword}.
CheckpointScore = namedtuple("CheckpointScore", "label cost options", defaults=({},))
AT_CHECKPOINT = {
    "grand": CheckpointScore("GraNd", 2.0, {"grand_chunk_size": "chunk_size"}),
    "el2n": CheckpointScore("EL2N", 1 / 3),
    "entropy": CheckpointScore("entropy", 1 / 3),  # of the softmax: DeepCore's uncertainty baseline
}
# Scores counted over a scoring run's whole training, and the one that needs no training.
OVER_A_RUN = {"forgetting": "forgetting", "aum": "AUM"}
OF_THE_DATA = {"input_norm": "input norm"}

# How a subset is chosen from a score. `prefix`: a study method `<prefix>-<score>` selects this way (a
# plain `<score>` keeps by the config's pruning.strategy); `shown`: such a method as the report writes it;
# `options`: its keywords, from the selection spec (the config's pruning.<name> section).
Selection = namedtuple("Selection", "prefix shown options", defaults=(None, "{}", ()))
SELECTIONS = {
    "keep_max": Selection(),  # the hardest: the paper's
    "keep_min": Selection("easy", "{} easiest"),
    "ccs": Selection("ccs", "CCS({})", ("beta", "strata")),  # coverage-centric (Zheng et al. 2023)
    "moderate": Selection("moderate", "moderate({})"),  # closest to the median score (Xia et al. 2023)
    "window": Selection(options=("left_out",)),
    "random": Selection(),
}
BY_PREFIX = {s.prefix: name for name, s in SELECTIONS.items() if s.prefix}
