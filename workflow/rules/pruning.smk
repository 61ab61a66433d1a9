# Pruning: keep a fraction of the training set chosen by a score (or at random) and retrain on it
# for the same number of steps as full data. Retraining run r uses the seeds of scoring run r.
# One rule serves the pruning curve, the how-early sweep, label noise and architecture transfer
# (method '<score>-from-<arch>': the subset chosen by another architecture's scores); the sliding
# window has its own rule because its subsets are positions in the ranking, not a kept fraction.

RETRAIN = f"{RUNS}/retrain/noise{{noise}}/{{method}}/keep{{keep}}/rep{{rep}}"
WINDOWED = f"{RUNS}/window/noise{{noise}}/{{score}}/keep{{keep}}/pos{{position}}/rep{{rep}}"


rule retrain:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        scores=method_scores,
    output:
        result=f"{RETRAIN}/result.json",
        subset=f"{RETRAIN}/subset.json",
    params:
        rule="retrain",
        spec=as_json(
            lambda w: training_spec(w, w.rep, method=w.method, keep=float(w.keep), selection=selection_spec(w.method))
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
        "datadiet retrain --spec {params.spec:q} --rule {params.rule} --wildcards {params.wildcards:q}"
        " --dataset {input.dataset:q} --labels {input.labels:q} {params.scores}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule retrain_window:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        scores=lambda w: score_file(w.dataset, w.arch, w.noise, w.score),
    output:
        result=f"{WINDOWED}/result.json",
        subset=f"{WINDOWED}/subset.json",
    params:
        rule="retrain_window",
        spec=as_json(
            lambda w: training_spec(
                w,
                w.rep,
                method=f"window-{w.score}",
                keep=float(w.keep),
                selection={"kind": "window", "position": float(w.position)},
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
        f"{OUT}/logs/{{dataset}}/{{arch}}/window/noise{{noise}}/{{score}}/keep{{keep}}/pos{{position}}/rep{{rep}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/retrain_window/noise{{noise}}/{{score}}/keep{{keep}}/pos{{position}}/rep{{rep}}.tsv"
    shell:
        "datadiet retrain --spec {params.spec:q} --rule {params.rule} --wildcards {params.wildcards:q}"
        " --dataset {input.dataset:q} --labels {input.labels:q} --scores {input.scores:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"
