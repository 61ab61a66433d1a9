"""Where every result of a study lives, under results/<study>/: each path built and parsed here.

A template's `{name}` fields are Snakemake's wildcards as they stand; `path()` fills the ones it is
given and leaves the rest for Snakemake, and `parse()` reads them back from a path. Every path of a
dataset and architecture starts with <dataset>/<arch>/ (<dataset>/data/ for the data), so one DAG holds
every dataset and architecture of the paper and two of them never share a file.
"""

import re

TRACKED = "mlflow/store.json"  # written once the MLflow store and experiment exist
STUDY_CONFIG = "study_config.json"
DATA = "{dataset}/data"
DATASET = DATA + "/dataset.pt"
DOWNLOADED = DATA + "/downloaded.json"  # a torchvision source fetched (by the submit host)
LABELS = DATA + "/labels_noise{noise}.pt"
RUNS = "{dataset}/{arch}"  # everything trained or scored with one architecture on one dataset
SCORING = RUNS + "/scoring/noise{noise}/seed{seed}"
CHECKPOINT = SCORING + "/ckpt_e{epoch}.pt"
STATE = SCORING + "/state_e{epoch}.pt"  # a spawn point of linear mode connectivity
SCORES = RUNS + "/scores/noise{noise}/{score}"
SEED_SCORES = SCORES + "/seed{seed}.csv"
MEAN_SCORES = SCORES + "/mean.csv"
REPEAT_SCORES = SCORES + "/rep{rep}.csv"  # the mean over one retraining repeat's own scoring runs
RETRAIN = RUNS + "/retrain/noise{noise}/{method}/keep{keep}/rep{rep}"
WINDOW = RUNS + "/window/noise{noise}/{score}/keep{keep}/left_out{left_out}/rep{rep}"
NTK = RUNS + "/ntk/noise{noise}/velocity_e{epoch}.csv"
CHILD = RUNS + "/lmc/noise{noise}/parent{seed}/spawn{epoch}/child{child}"  # parent: a scoring run
BARRIER = RUNS + "/lmc/noise{noise}/barrier.csv"
FIGURES = "figures"
LOGS = "logs"
BENCHMARKS = "benchmarks"  # Snakemake's benchmark: files, benchmarks/<dataset>/<arch>/<rule>/...
REPORT = "report.html"


def log(where):
    """A job's log: logs/<where>.log."""
    return f"{LOGS}/{where}.log"


def run_log(rule, where):
    """The log of a job of `rule` on one dataset and architecture: logs/<dataset>/<arch>/<rule>/<where>.log."""
    return log(f"{RUNS}/{rule}/{where}")


def run_benchmark(rule, where):
    """Snakemake's benchmark: file of a job of `rule` on one dataset and architecture (the report's compute
    table reads <rule> from it): benchmarks/<dataset>/<arch>/<rule>/<where>.tsv."""
    return f"{BENCHMARKS}/{RUNS}/{rule}/{where}.tsv"


NUMBERS = ("noise", "keep", "left_out")  # written as floats: 0.0, 0.5


def number(value):
    """A noise level, kept fraction or share left out above a window as paths write it (0.5, 1.0)."""
    return str(float(value))


class _Unfilled(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def fill(template, **values):
    """`template` with the fields given filled (numbers as paths write them), the others left as wildcards."""
    values = {k: number(v) if k in NUMBERS else v for k, v in values.items()}
    return template.format_map(_Unfilled(values))


def parse(template, path):
    """The fields of `path` (the end of a path made from `template`) as strings; ValueError if it is not one."""
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    match = re.search(f"(?:^|/){pattern}$", str(path))
    if match is None:
        raise ValueError(f"{path} is not a path of the form {template}")
    return match.groupdict()


class Layout:
    """The paths of one study: results/<study>/ and the templates above under it."""

    def __init__(self, out):
        self.out = out

    def __call__(self, template, **values):
        return f"{self.out}/{fill(template, **values)}"


# What each job of the DAG makes, by the one output that names it (a job's other outputs come later
# in this order): `datadiet estimate` and the tests read a planned job's kind and wildcards from it.
JOB_OUTPUTS = {
    "retrain": RETRAIN + "/result.json",
    "window": WINDOW + "/result.json",
    "scoring": SCORING + "/result.json",
    "child": CHILD + "/result.json",
    "barrier": BARRIER,
    "ntk": NTK,
    "score": SEED_SCORES,
    "mean": MEAN_SCORES,
    "repeat_mean": REPEAT_SCORES,
    "dataset": DATASET,
    "download": DOWNLOADED,
    "labels": LABELS,
    "tracking": TRACKED,
    "report": REPORT,
}
# A job that makes several runs, one after another: the field of its outputs that tells them apart.
RUN_FIELD = {"retrain": "rep", "window": "rep", "score": "score"}
