# Pruning: keep a fraction of the training set chosen by a score (or at random) and retrain on it
# for the same number of steps as full data. Retraining run r uses the seeds of scoring run r.
# One rule serves the pruning curve, the how-early sweep, label noise and architecture transfer
# (method '<score>-from-<arch>': the subset chosen by another architecture's scores); the sliding
# window has its own rule because its subsets are windows of the ranking, placed by the share of the
# set left out above them (harder than the window), not a kept fraction.

RETRAIN = path(layout.RETRAIN)
WINDOWED = path(layout.WINDOW)


rule retrain:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        scores=lambda w: S.selection_scores(w.dataset, w.arch, w.noise, w.method),
    output:
        result=f"{RETRAIN}/result.json",
        subset=f"{RETRAIN}/subset.json",
    params:
        rule="retrain",
        spec=spec(
            lambda w: training_spec(
                w,
                w.rep,
                method=w.method,
                keep=float(w.keep),
                selection=S.selection(w.method, float(w.keep)),
            )
        ),
        wildcards=wildcards_json,
        scores=lambda w, input: f"--scores {input.scores[0]}" if input.scores else "",
        out_dir=lambda w, output: os.path.dirname(output.result),
    threads: config["threads"]
    resources:
        **cluster_resources("train"),
    conda:
        "../../environment.yml"
    log:
        f"{OUT}/logs/{{dataset}}/{{arch}}/retrain/noise{{noise}}/{{method}}/keep{{keep}}/rep{{rep}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/retrain/noise{{noise}}/{{method}}/keep{{keep}}/rep{{rep}}.tsv"
    shell:
        job("retrain", "{params.scores}", dataset="input.dataset", labels="input.labels", out_dir="params.out_dir")


rule retrain_window:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        scores=path(layout.MEAN_SCORES),
    output:
        result=f"{WINDOWED}/result.json",
        subset=f"{WINDOWED}/subset.json",
    params:
        rule="retrain_window",
        spec=spec(
            lambda w: training_spec(
                w,
                w.rep,
                method=names.window_method(w.score),
                keep=float(w.keep),
                selection={"kind": "window", "left_out": float(w.left_out)},
            )
        ),
        wildcards=wildcards_json,
        out_dir=lambda w, output: os.path.dirname(output.result),
    threads: config["threads"]
    resources:
        **cluster_resources("train"),
    conda:
        "../../environment.yml"
    log:
        f"{OUT}/logs/{{dataset}}/{{arch}}/window/noise{{noise}}/{{score}}/keep{{keep}}/left_out{{left_out}}/rep{{rep}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/retrain_window/noise{{noise}}/{{score}}/keep{{keep}}/left_out{{left_out}}/rep{{rep}}.tsv"
    shell:
        job("retrain", dataset="input.dataset", labels="input.labels", scores="input.scores", out_dir="params.out_dir")
