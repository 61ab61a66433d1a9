# Pruning: keep a fraction of the training set chosen by a score (or at random) and retrain on it
# for the same number of steps as full data. Retraining run r uses the seeds of scoring run r.
# One rule serves the pruning curve, the how-early sweep, label noise and architecture transfer
# (method '<score>-from-<arch>': the subset chosen by another architecture's scores); the sliding
# window has its own rule because its subsets are positions in the ranking, not a kept fraction.

RETRAIN = f"{RUNS}/retrain/noise{{noise}}/{{method}}/keep{{keep}}/rep{{rep}}"
WINDOWED = f"{RUNS}/window/noise{{noise}}/{{score}}/keep{{keep}}/pos{{position}}/rep{{rep}}"


def selection_spec(method):
    """How the retrain command picks its subset for a method name."""
    if score_of(method) is None:
        return {"kind": "random"}
    if method.startswith("ccs-"):
        return {"kind": "ccs", **config["pruning"]["ccs"]}
    return {"kind": config["pruning"]["strategy"]}


def method_scores(w):
    score = score_of(w.method)
    if score is None:
        return []
    score, _, other_arch = score.partition("-from-")
    return [score_file(w.dataset, other_arch or w.arch, w.noise, score)]


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
        spec=as_json(
            lambda w: training_spec(w, w.rep, method=w.method, keep=float(w.keep), selection=selection_spec(w.method))
        ),
        wildcards=wildcards_json,
        scores=lambda w, input: f"--scores {input.scores[0]}" if input.scores else "",
        out_dir=lambda w, output: os.path.dirname(output.result),
    threads: config["threads"]
    resources:
        **cluster_resources("train"),
    log:
        f"{OUT}/logs/{{dataset}}/{{arch}}/retrain/noise{{noise}}/{{method}}/keep{{keep}}/rep{{rep}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/retrain/noise{{noise}}/{{method}}/keep{{keep}}/rep{{rep}}.tsv"
    shell:
        "datadiet retrain --spec {params.spec:q} --rule {rule} --wildcards {params.wildcards:q}"
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
    log:
        f"{OUT}/logs/{{dataset}}/{{arch}}/window/noise{{noise}}/{{score}}/keep{{keep}}/pos{{position}}/rep{{rep}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/window/noise{{noise}}/{{score}}/keep{{keep}}/pos{{position}}/rep{{rep}}.tsv"
    shell:
        "datadiet retrain --spec {params.spec:q} --rule {rule} --wildcards {params.wildcards:q}"
        " --dataset {input.dataset:q} --labels {input.labels:q} --scores {input.scores:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


def retrain_result(dataset, arch, noise, method, keep, rep):
    return f"{OUT}/{dataset}/{arch}/retrain/noise{noise}/{method}/keep{keep}/rep{rep}/result.json"


def curve_results():
    """The pruning curve of every dataset at every noise level: full data once, every method at
    every pruned fraction (under noise, noise.methods)."""
    paths = []
    for dataset in DATASETS:
        for noise in NOISE:
            methods = METHODS if noise == CLEAN else NOISY_METHODS
            paths += [retrain_result(dataset, arch_of(dataset), noise, "full", "1.0", r) for r in REPEATS]
            paths += [
                retrain_result(dataset, arch_of(dataset), noise, m, k, r) for m in methods for k in PRUNED for r in REPEATS
            ]
    return paths


def how_early_results():
    """Fig. 1 top: one kept fraction per dataset, GraNd@t and EL2N@t for every early t, with
    forgetting and random as reference lines (clean labels)."""
    paths = []
    for dataset, spec in DATASETS.items():
        keep = str(float(spec["how_early_keep"]))
        methods = [f"{k}_e{t}" for k in ("grand", "el2n") for t in HOW_EARLY["epochs"]] + ["forgetting", "random"]
        paths += [retrain_result(dataset, arch_of(dataset), CLEAN, m, keep, r) for m in methods for r in REPEATS]
    return paths


def window_results():
    """Fig. 2: a window of each kept fraction slid over the ranking, clean and under every noise level."""
    dataset = WINDOW["dataset"]
    return expand(
        f"{OUT}/{dataset}/{arch_of(dataset)}/window/noise{{noise}}/{WINDOW['score']}/keep{{keep}}/pos{{position}}/rep{{rep}}/result.json",
        noise=NOISE,
        keep=[str(float(k)) for k in WINDOW["kept"]],
        position=[str(float(p)) for p in WINDOW["positions"]],
        rep=range(WINDOW["repeats"]),
    )


def transfer_results():
    """Every architecture trained on the subsets chosen by every architecture's scores, plus
    random subsets and full data for each as the reference."""
    dataset, score, keep = TRANSFER["dataset"], TRANSFER["score"], str(float(TRANSFER["keep"]))
    paths = []
    for arch in TRANSFER["archs"]:
        methods = ["random"] + [score if by == arch else f"{score}-from-{by}" for by in TRANSFER["archs"]]
        paths += [retrain_result(dataset, arch, CLEAN, m, keep, r) for m in methods for r in REPEATS]
        paths += [retrain_result(dataset, arch, CLEAN, "full", "1.0", r) for r in REPEATS]
    return paths
