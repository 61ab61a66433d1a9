"""A study's config: loaded and validated as the workflow loads it, checked across keys, and split into
what a job is (its identity: hyperparameters, in Snakemake params and MLflow params) and where it runs
(its placement: results folder, tracking store, threads, device, cluster; from options and the
environment, so moving a checkout or pointing jobs at a server reruns nothing).

`config.yaml` is the base; a preset (`--configfile config/X.yaml`) is merged over it and holds only
what differs from it.
"""

import json
from pathlib import Path

import yaml

from . import checks, layout, names
from .checks import KNOWN_SIZES, ConfigError
from .experiments.pruning import HOW_EARLY_SCORES

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
BASE = ROOT / "config.yaml"
PLACEMENT_KEYS = ("results_dir", "tracking", "cluster", "estimate", "threads", "device")
EXPERIMENTS = ("how_early", "window", "transfer", "ntk", "lmc", "size_sweep")


def merge(base, over):
    """`over` merged into `base` key by key (nested dicts merged, anything else replaced), as Snakemake
    merges a --configfile over the Snakefile's configfile."""
    merged = dict(base)
    for key, value in over.items():
        merged[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def validate(config):
    """The schema's checks, with its defaults filled in (as the Snakefile's validate does)."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate as snakemake_validate

    try:
        snakemake_validate(config, str(SCHEMA))
    except WorkflowError as error:
        raise ConfigError(str(error)) from None
    return config


def load(*configfiles, base=BASE):
    """config.yaml with each file merged over it in order, validated and checked."""
    config = yaml.safe_load(Path(base).read_text())
    for path in configfiles:
        config = merge(config, yaml.safe_load(Path(path).read_text()) or {})
    return Study(validate(config))


def identity(config):
    """The config less where it runs: two studies with the same identity compute the same results."""
    return json.loads(json.dumps({k: v for k, v in config.items() if k not in PLACEMENT_KEYS}))


def differing_keys(a, b, prefix=""):
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [] if a == b else [prefix.rstrip(".")]
    return [key for k in sorted(set(a) | set(b)) for key in differing_keys(a.get(k), b.get(k), f"{prefix}{k}.")]


# Settings added since studies began recording their config, each with the value that computes what a
# study made before it computed: a record without the key agrees with a config that holds this value. A
# kind of checkpoint score added to the registry: a record without its epochs did not take it.
ADDED_AS_BEFORE = {
    "train.flip": "random",
    "train.whiten_bias_epochs": None,
    **{f"scores.{kind}_epochs": [] for kind in names.AT_EPOCH},
}
# Settings since removed that only judged verdicts: a record holding one computed the same results.
REMOVED = {"experiments.window.near_hard"}


MISSING = object()


def value_at(config, dotted):
    """The value of a dotted key ("train.flip"), or MISSING."""
    for key in dotted.split("."):
        if not isinstance(config, dict) or key not in config:
            return MISSING
        config = config[key]
    return config


def has_key(config, dotted):
    return value_at(config, dotted) is not MISSING


def added_as_before(old, new, dotted):
    """Whether `dotted`, absent from the record `old`, is a setting added since whose value in `new`
    computes what the recorded study computed."""
    return dotted in ADDED_AS_BEFORE and not has_key(old, dotted) and value_at(new, dotted) == ADDED_AS_BEFORE[dotted]


def numbers(values):
    return [layout.number(v) for v in values]


def score_epochs(scores, early, swept):
    """{checkpoint score: the epochs it is taken at}: the config's `scores.<kind>_epochs`, how early's
    `early` epochs (GraNd and EL2N) and the size sweep's score `swept`."""
    return {
        kind: sorted(
            set(scores[f"{kind}_epochs"]) | (early if kind in HOW_EARLY_SCORES else set()) | epoch_of(swept, kind)
        )
        for kind in names.AT_EPOCH
    }


def epoch_of(score, kind):
    """{the epoch} of `score` when it is a checkpoint score of `kind`, else {}."""
    return {score.epoch} if score is not None and score.kind == kind and score.epoch is not None else set()


class Study:
    """A validated config and what follows from it: the study's names, levels and epochs."""

    def __init__(self, config):
        self.config = config
        self.name = config["study"]
        self.out = f"{config['results_dir']}/{self.name}"
        self.path = layout.Layout(self.out)
        self.datasets = config["datasets"]
        self.first = next(iter(self.datasets))
        self.seeds = list(range(config["scores"]["seeds"]))
        self.seeds_per_repeat = config["scores"]["seeds_per_repeat"]
        self.short_scoring = config["scores"]["short_runs"]  # scoring runs cut at their last checkpoint
        self.repeats = list(range(config["pruning"]["repeats"]))
        self.noise = numbers(config["noise"]["levels"])
        self.clean, self.noisy = self.noise[0], self.noise[1:]
        self.kept = numbers(config["pruning"]["kept"])
        self.pruned = [k for k in self.kept if float(k) < 1]
        self.methods = config["pruning"]["methods"]
        self.noisy_methods = config["noise"]["methods"] or self.methods
        experiments = config["experiments"]
        self.how_early = experiments["how_early"]
        # The experiments on one dataset with one score (all but how early), their dataset filled in.
        self.sections = {
            name: {**experiments[name], "dataset": experiments[name]["dataset"] or self.first}
            for name in EXPERIMENTS
            if name != "how_early"
        }
        self.window, self.transfer, self.ntk, self.lmc, self.sweep = self.sections.values()
        # The size sweep's training sets: {name: size}; a size that is the whole dataset is the dataset.
        self.sizes = {self.sized(n): n for n in self.sweep["sizes"]} if self.active("size_sweep") else {}
        self.subsets = {name: n for name, n in self.sizes.items() if name not in self.datasets}
        early = set(self.how_early["epochs"]) if self.active("how_early") else set()
        # The size sweep's score is taken on the study's own scoring runs too (its point at the dataset's size).
        swept = names.Score.parse(self.sweep["score"]) if self.sizes else None
        self.score_epochs = score_epochs(config["scores"], early, swept)
        self.scored = [f"{kind}_e{t}" for kind, epochs in self.score_epochs.items() for t in epochs]
        # Forgetting and AUM are counted over a scoring run's whole training: short runs have none.
        self.all_scores = self.scored + ([] if self.short_scoring else ["forgetting", "aum"]) + ["input_norm"]
        # Checkpoints every scoring run keeps: the score epochs and both ends of each NTK-velocity step.
        ntk_epochs = {e + d for e in self.ntk["epochs"] for d in (0, 1)} if self.active("ntk") else set()
        self.checkpoint_epochs = sorted(set().union(*self.score_epochs.values()) | ntk_epochs)
        # The GraNd and EL2N scores one scoring job computes from its run's checkpoints: every score of
        # the study on clean data, the scores the noisy experiments select by at a noise level.
        noisy = {str(self.method(m).score) for m in self.noisy_methods if self.method(m).score}
        self.noisy_scores = sorted(noisy | {self.window["score"], self.ntk["score"]})
        self.noisy_scored = [s for s in self.scored if s in self.noisy_scores] if self.noisy else []
        # The runs one retraining job makes, one after another: a point's repeats on a configured dataset;
        # on a size-sweep subset, the sweep's repeats of a selection and its full_repeats of full data.
        # At the study's own size, the sweep's points may ask for more runs than the point's repeats: one
        # more job each makes those, so that no other point trains runs nobody reads.
        swept = (self.sweep["repeats"], self.sweep["full_repeats"]) if self.sizes else (0, 0)
        self.own_size = [name for name in self.sizes if name in self.datasets]
        self.sweep_runs, self.sweep_full_runs = (list(range(n)) for n in swept)
        more = swept if self.own_size else (0, 0)
        self.more_runs, self.more_full_runs = (list(range(len(self.repeats), n)) for n in more)
        lmc = self.active("lmc")
        self.spawn_epochs = sorted(self.lmc["spawn_epochs"]) if lmc else []
        self.parents = list(range(self.lmc["parents"])) if lmc else []  # LMC parents: these scoring seeds

    def active(self, experiment):
        """Whether an experiment of `experiments` runs (its `activate`)."""
        return self.config["experiments"][experiment]["activate"]

    def train_size(self, dataset):
        """Training examples of a dataset: a size-sweep subset's size, else its configured size."""
        return self.subsets[dataset] if dataset in self.subsets else self.configured_size(dataset)

    def configured_size(self, dataset):
        """Training examples of a dataset of `datasets`, from the config (and the sizes of the paper's
        datasets)."""
        spec = self.datasets.get(dataset, {})  # one not in datasets is refused by check()
        if spec.get("train_size"):
            return spec["train_size"]
        if spec.get("train_per_class") and spec.get("num_classes"):
            return spec["train_per_class"] * spec["num_classes"]
        return KNOWN_SIZES.get(spec.get("name", dataset), 50_000)

    def sized(self, size):
        """The dataset of the size sweep with `size` training examples: the sweep's dataset itself at its
        own size, else `<dataset>_n<size>`, a nested class-balanced subset of the same source."""
        dataset = self.sweep["dataset"]
        return dataset if size == self.configured_size(dataset) else f"{dataset}_n{size}"

    def spec_of(self, dataset):
        """The datasets entry of a dataset; a size-sweep subset has its parent's (less its size keys)."""
        if dataset in self.subsets:
            return {**self.datasets[self.sweep["dataset"]], "train_per_class": None, "train_size": None}
        return self.datasets[dataset]

    def seeds_of(self, dataset):
        """Scoring seeds averaged on a dataset: scores.seeds, or the size sweep's on its subsets."""
        return list(range(self.sweep["seeds"])) if dataset in self.subsets else self.seeds

    def arch_of(self, dataset):
        return self.spec_of(dataset)["arch"]

    @property
    def curve_score(self):
        """The early EL2N score the pruning curve's claims are about: the earliest plain (keep_max) EL2N
        method of pruning.methods past epoch 0, else the transfer experiment's score."""
        plain = [self.method(m) for m in self.methods if self.method(m).kind == "score"]
        early = sorted((m.score.epoch, str(m)) for m in plain if m.score and m.score.kind == "el2n" and m.score.epoch)
        return early[0][1] if early else self.transfer["score"]

    def method(self, name):
        return names.Method.parse(name, self.config["pruning"]["strategy"])

    def train_config(self, dataset):
        batch = self.spec_of(dataset)["batch_size"]
        return {**self.config["train"], **({"batch_size": batch} if batch else {})}

    def selection_scores(self, dataset, arch, noise, method):
        """The mean score files a method selects by: none for random and full, another architecture's for
        a transfer; with scores.seeds_per_repeat one a repeat, in the order of `repeats`."""
        method = self.method(method)
        if method.score is None:
            return []
        where = {"dataset": dataset, "arch": method.source_arch or arch, "noise": noise, "score": str(method.score)}
        if self.seeds_per_repeat and dataset not in self.subsets:
            return [self.path(layout.REPEAT_SCORES, **where, rep=r) for r in self.repeats]
        return [self.path(layout.MEAN_SCORES, **where)]

    def repeat_seeds(self, rep):
        """The scoring runs retraining repeat `rep` selects by, with scores.seeds_per_repeat."""
        k = self.seeds_per_repeat
        return list(range(rep * k, (rep + 1) * k))

    def check(self):
        """What the schema cannot say (study/checks.py); the study itself, checked."""
        return checks.check(self)

    # Two configs never share a results folder: the first run records the config's identity, and
    # another config is refused there before any job starts.
    def check_same_study(self):
        recorded = Path(self.path(layout.STUDY_CONFIG))
        if not recorded.exists():
            return
        old, now = identity(json.loads(recorded.read_text())), identity(self.config)
        differs = [key for key in differing_keys(old, now) if not added_as_before(old, now, key) and key not in REMOVED]
        if differs:
            # A key the record lacks is a setting added since that study was made: its default may differ.
            new = [key for key in differs if not has_key(old, key)]
            added = f"; {', '.join(new)}: not in its record, a setting added since whose default changes results"
            raise ConfigError(
                f"{self.out} holds study {self.name!r} made with another config (it differs in {', '.join(differs)}"
                f"{added if new else ''}); give this config another `study:` name, or delete {self.out} to start "
                "it over"
            )

    def record(self):
        recorded = Path(self.path(layout.STUDY_CONFIG))
        if not recorded.exists():
            recorded.parent.mkdir(parents=True, exist_ok=True)
            recorded.write_text(json.dumps(identity(self.config), indent=2, sort_keys=True))
