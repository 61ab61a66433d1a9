# Pruning: keep a fraction of the training set chosen by a score (or at random) and retrain on it
# for the same number of steps as full data. Retraining run r uses the seeds of scoring run r.


rule retrain:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        scores=lambda w: [] if w.method in ("full", "random") else [score_file(w.noise, w.method)],
    output:
        result=f"{OUT}/retrain/noise{{noise}}/{{method}}/keep{{keep}}/rep{{rep}}/result.json",
        subset=f"{OUT}/retrain/noise{{noise}}/{{method}}/keep{{keep}}/rep{{rep}}/subset.json",
    params:
        spec=as_json(
            lambda w: training_spec(
                w.rep,
                w.noise,
                method=w.method,
                keep=float(w.keep),
                strategy=config["pruning"]["strategy"],
            )
        ),
        wildcards=wildcards_json,
        scores=lambda w, input: f"--scores {input.scores[0]}" if input.scores else "",
        out_dir=lambda w, output: os.path.dirname(output.result),
    threads: config["threads"]
    log:
        f"{OUT}/logs/retrain/noise{{noise}}/{{method}}/keep{{keep}}/rep{{rep}}.log",
    benchmark:
        f"{OUT}/benchmarks/retrain/noise{{noise}}/{{method}}/keep{{keep}}/rep{{rep}}.tsv"
    shell:
        "datadiet retrain --spec {params.spec:q} --rule {rule} --wildcards {params.wildcards:q}"
        " --dataset {input.dataset:q} --labels {input.labels:q} {params.scores}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


def pruning_results():
    """Every retraining run of the pruning curve: full data once, every method at every pruned level."""
    full = expand(f"{OUT}/retrain/noise{{noise}}/full/keep1.0/rep{{rep}}/result.json", noise=NOISE, rep=REPEATS)
    pruned = expand(
        f"{OUT}/retrain/noise{{noise}}/{{method}}/keep{{keep}}/rep{{rep}}/result.json",
        noise=NOISE,
        method=METHODS,
        keep=PRUNED,
        rep=REPEATS,
    )
    return full + pruned
