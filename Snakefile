# datadiet: score every training example early, prune the easy ones, retrain, report.
# `snakemake --cores 2` runs the laptop study in config.yaml; `--configfile config/X.yaml` another.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/setup.smk"
include: "workflow/rules/scores.smk"
include: "workflow/rules/pruning.smk"
include: "workflow/rules/size_sweep.smk"
include: "workflow/rules/dynamics.smk"
include: "workflow/rules/report.smk"


rule all:
    localrule: True
    input:
        f"{OUT}/report.html",
    default_target: True
