# Pruning: keep a fraction of the training set chosen by a score (or at random) and retrain on it
# for the same number of steps as full data. Retraining run r uses the seeds of scoring run r.
# One rule serves the pruning curve, the how-early sweep, label noise and architecture transfer
# (method '<score>-from-<arch>': the subset chosen by another architecture's scores); the sliding
# window has its own rule because its subsets are windows of the ranking, placed by the share of the
# set left out above them (harder than the window), not a kept fraction.

RETRAIN = path(layout.RETRAIN)
WINDOWED = path(layout.WINDOW)


# The repeats of a retraining point on a configured dataset (pruning.repeats) in one job, one after
# another, each its own MLflow run.
rule retrain:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        scores=lambda w: STUDY.selection_scores(w.dataset, w.arch, w.noise, w.method),
    output:
        result=runs_of(RETRAIN, STUDY.repeats, "result.json"),
        subset=runs_of(RETRAIN, STUDY.repeats, "subset.json"),
    wildcard_constraints:
        dataset=CONFIGURED,
    params:
        rule="retrain",
        spec=run_specs(f"{RETRAIN}/result.json", specs.retrain, "result"),
        wildcards=wildcards_json,
        scores=lambda w, input: f"--scores {' '.join(map(shlex.quote, input.scores))}" if input.scores else "",
        out_dir=out_dirs,
    threads: config["threads"]
    resources:
        **one_after_another(cluster_resources("train"), len(STUDY.repeats)),
    conda:
        "../envs/datadiet.yaml"
    log:
        run_log("retrain", "noise{noise}/{method}/keep{keep}"),
    benchmark:
        run_benchmark("retrain", "noise{noise}/{method}/keep{keep}")
    shell:
        job("retrain", "{params.scores}", dataset="input.dataset", labels="input.labels", out_dir="params.out_dir")


# The size sweep's points: on a subset, its selections `repeats` times and full data `full_repeats` times;
# at the study's own size, the runs of these beyond a point's repeats (the retrain rule's). Each its own
# rule, so that no point trains runs nobody reads.
SWEPT = {
    "arch": one_of([STUDY.arch_of(STUDY.sweep["dataset"])]),
    "noise": one_of([float(STUDY.clean)]),
    "method": one_of(size_sweep.methods(STUDY.sweep["score"])),
    "keep": one_of(map(float, STUDY.sweep["kept"])),
}
SWEPT_FULL = {**SWEPT, "method": "full", "keep": one_of([1.0])}

if STUDY.sweep_runs:

    use rule retrain as sweep_retrain with:
        output:
            result=runs_of(RETRAIN, STUDY.sweep_runs, "result.json"),
            subset=runs_of(RETRAIN, STUDY.sweep_runs, "subset.json"),
        wildcard_constraints:
            dataset=SUBSETS,
            **SWEPT,
        params:
            rule="sweep_retrain",
        resources:
            **one_after_another(cluster_resources("train"), len(STUDY.sweep_runs)),


if STUDY.sweep_full_runs:

    use rule retrain as sweep_full with:
        output:
            result=runs_of(RETRAIN, STUDY.sweep_full_runs, "result.json"),
            subset=runs_of(RETRAIN, STUDY.sweep_full_runs, "subset.json"),
        wildcard_constraints:
            dataset=SUBSETS,
            **SWEPT_FULL,
        params:
            rule="sweep_full",
        resources:
            **one_after_another(cluster_resources("train"), len(STUDY.sweep_full_runs)),


if STUDY.more_runs:

    use rule retrain as retrain_more with:
        output:
            result=runs_of(RETRAIN, STUDY.more_runs, "result.json"),
            subset=runs_of(RETRAIN, STUDY.more_runs, "subset.json"),
        wildcard_constraints:
            dataset=one_of(STUDY.own_size),
            **SWEPT,
        params:
            rule="retrain_more",
        resources:
            **one_after_another(cluster_resources("train"), len(STUDY.more_runs)),


if STUDY.more_full_runs:

    use rule retrain as full_more with:
        output:
            result=runs_of(RETRAIN, STUDY.more_full_runs, "result.json"),
            subset=runs_of(RETRAIN, STUDY.more_full_runs, "subset.json"),
        wildcard_constraints:
            dataset=one_of(STUDY.own_size),
            **SWEPT_FULL,
        params:
            rule="full_more",
        resources:
            **one_after_another(cluster_resources("train"), len(STUDY.more_full_runs)),


rule retrain_window:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        scores=path(layout.MEAN_SCORES),
    output:
        result=runs_of(WINDOWED, range(STUDY.window["repeats"]), "result.json"),
        subset=runs_of(WINDOWED, range(STUDY.window["repeats"]), "subset.json"),
    params:
        rule="retrain_window",
        spec=run_specs(f"{WINDOWED}/result.json", specs.window, "result"),
        wildcards=wildcards_json,
        out_dir=out_dirs,
    threads: config["threads"]
    resources:
        **one_after_another(cluster_resources("train"), STUDY.window["repeats"]),
    conda:
        "../envs/datadiet.yaml"
    log:
        run_log("retrain_window", "noise{noise}/{score}/keep{keep}/left_out{left_out}"),
    benchmark:
        run_benchmark("retrain_window", "noise{noise}/{score}/keep{keep}/left_out{left_out}")
    shell:
        job("retrain", dataset="input.dataset", labels="input.labels", scores="input.scores", out_dir="params.out_dir")
