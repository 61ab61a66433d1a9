# Training dynamics: NTK velocity of EL2N-sorted blocks (Fig. 3) and linear mode connectivity of
# children spawned from parent runs (Fig. 4). Both read the checkpoints of scoring runs.


rule ntk_velocity:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        before=path(layout.CHECKPOINT, seed=0),
        after=lambda w: path(layout.CHECKPOINT, **{**dict(w.items()), "seed": 0, "epoch": int(w.epoch) + 1}),
        scores=path(layout.MEAN_SCORES, score=STUDY.ntk["score"]),
    output:
        path(layout.NTK),
    params:
        rule="ntk_velocity",
        spec=spec(specs.ntk),
        wildcards=wildcards_json,
    threads: config["threads"]
    resources:
        **cluster_resources("dynamics"),
    conda:
        "../envs/datadiet.yaml"
    log:
        run_log("ntk_velocity", "noise{noise}/e{epoch}"),
    benchmark:
        run_benchmark("ntk_velocity", "noise{noise}/e{epoch}")
    shell:
        job(
            "ntk-velocity",
            dataset="input.dataset",
            labels="input.labels",
            before="input.before",
            after="input.after",
            scores="input.scores",
            out="output",
        )


CHILD = path(layout.CHILD)
LMC_CHILDREN = {"seed": STUDY.parents, "epoch": STUDY.spawn_epochs, "child": lmc.CHILDREN}  # parent x spawn x child


rule lmc_child:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        spawn=path(layout.STATE),
        parent=f"{SCORING}/result.json",
    output:
        result=f"{CHILD}/result.json",
        model=f"{CHILD}/final.pt",
    params:
        rule="lmc_child",
        spec=spec(specs.child),
        wildcards=wildcards_json,
        out_dir=lambda w, output: os.path.dirname(output.result),
    threads: config["threads"]
    resources:
        **cluster_resources("train"),
    conda:
        "../envs/datadiet.yaml"
    log:
        run_log("lmc_child", "noise{noise}/parent{seed}/spawn{epoch}/child{child}"),
    benchmark:
        run_benchmark("lmc_child", "noise{noise}/parent{seed}/spawn{epoch}/child{child}")
    shell:
        job(
            "lmc-child",
            dataset="input.dataset",
            labels="input.labels",
            spawn="input.spawn",
            parent="input.parent",
            out_dir="params.out_dir",
        )


rule lmc_barrier:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        children=expand(f"{CHILD}/final.pt", **LMC_CHILDREN, allow_missing=True),
        results=expand(f"{CHILD}/result.json", **LMC_CHILDREN, allow_missing=True),
        scores=path(layout.MEAN_SCORES, score=STUDY.lmc["score"]),
    output:
        path(layout.BARRIER),
    params:
        rule="lmc_barrier",
        spec=spec(specs.lmc_barrier),
        wildcards=wildcards_json,
    threads: config["threads"]
    resources:
        **cluster_resources("dynamics"),
    conda:
        "../envs/datadiet.yaml"
    log:
        run_log("lmc_barrier", "noise{noise}"),
    benchmark:
        run_benchmark("lmc_barrier", "noise{noise}")
    shell:
        job(
            "lmc-barrier",
            dataset="input.dataset",
            labels="input.labels",
            children="input.children",
            results="input.results",
            scores="input.scores",
            out="output",
        )
