# Training dynamics: NTK velocity of EL2N-sorted blocks (Fig. 3) and linear mode connectivity of
# children spawned from one parent run (Fig. 4). Both read the checkpoints of scoring runs.


rule ntk_velocity:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        before=f"{RUNS}/scoring/noise{{noise}}/seed0/ckpt_e{{epoch}}.pt",
        after=lambda w: f"{OUT}/{w.dataset}/{w.arch}/scoring/noise{w.noise}/seed0/ckpt_e{int(w.epoch) + 1}.pt",
        scores=lambda w: score_file(w.dataset, w.arch, w.noise, NTK["score"]),
    output:
        f"{RUNS}/ntk/noise{{noise}}/velocity_e{{epoch}}.csv",
    params:
        rule="ntk_velocity",
        spec=as_json(
            lambda w: {
                "study": STUDY,
                "tracking": TRACKING,
                "threads": config["threads"],
                "device": config["device"],
                "dataset": w.dataset,
                "arch": w.arch,
                "noise": float(w.noise),
                "epoch": int(w.epoch),
                **{k: NTK[k] for k in ("score", "block_size", "blocks", "chunk_size")},
            }
        ),
        wildcards=wildcards_json,
    threads: config["threads"]
    resources:
        **cluster_resources("dynamics"),
    conda:
        "../../environment.yml"
    log:
        f"{OUT}/logs/{{dataset}}/{{arch}}/ntk_velocity/noise{{noise}}/e{{epoch}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/ntk_velocity/noise{{noise}}/e{{epoch}}.tsv"
    shell:
        "datadiet ntk-velocity --spec {params.spec:q} --rule {params.rule} --wildcards {params.wildcards:q}"
        " --dataset {input.dataset:q} --labels {input.labels:q} --before {input.before:q}"
        " --after {input.after:q} --scores {input.scores:q} --out {output:q} > {log:q} 2>&1"


CHILD = f"{RUNS}/lmc/noise{{noise}}/spawn{{epoch}}/child{{child}}"


rule lmc_child:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        spawn=f"{RUNS}/scoring/noise{{noise}}/seed0/state_e{{epoch}}.pt",
        parent=f"{RUNS}/scoring/noise{{noise}}/seed0/result.json",
    output:
        result=f"{CHILD}/result.json",
        model=f"{CHILD}/final.pt",
    params:
        rule="lmc_child",
        spec=as_json(lambda w: training_spec(w, 0, spawn_epoch=int(w.epoch), child=int(w.child))),
        wildcards=wildcards_json,
        out_dir=lambda w, output: os.path.dirname(output.result),
    threads: config["threads"]
    resources:
        **cluster_resources("train"),
    conda:
        "../../environment.yml"
    log:
        f"{OUT}/logs/{{dataset}}/{{arch}}/lmc_child/noise{{noise}}/spawn{{epoch}}/child{{child}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/lmc_child/noise{{noise}}/spawn{{epoch}}/child{{child}}.tsv"
    shell:
        "datadiet lmc-child --spec {params.spec:q} --rule {params.rule} --wildcards {params.wildcards:q}"
        " --dataset {input.dataset:q} --labels {input.labels:q} --spawn {input.spawn:q}"
        " --parent {input.parent:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule lmc_barrier:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        children=expand(f"{CHILD}/final.pt", epoch=SPAWN_EPOCHS, child=[0, 1], allow_missing=True),
        results=expand(f"{CHILD}/result.json", epoch=SPAWN_EPOCHS, child=[0, 1], allow_missing=True),
        scores=lambda w: score_file(w.dataset, w.arch, w.noise, LMC["score"]),
    output:
        f"{RUNS}/lmc/noise{{noise}}/barrier.csv",
    params:
        rule="lmc_barrier",
        spec=as_json(
            lambda w: {
                "study": STUDY,
                "tracking": TRACKING,
                "threads": config["threads"],
                "device": config["device"],
                "dataset": w.dataset,
                "arch": w.arch,
                "noise": float(w.noise),
                "spawn_epochs": SPAWN_EPOCHS,
                **{k: LMC[k] for k in ("score", "set_size", "alphas")},
            }
        ),
        wildcards=wildcards_json,
    resources:
        **cluster_resources("dynamics"),
    conda:
        "../../environment.yml"
    log:
        f"{OUT}/logs/{{dataset}}/{{arch}}/lmc_barrier/noise{{noise}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/lmc_barrier/noise{{noise}}.tsv"
    shell:
        "datadiet lmc-barrier --spec {params.spec:q} --rule {params.rule} --wildcards {params.wildcards:q}"
        " --dataset {input.dataset:q} --labels {input.labels:q} --children {input.children:q}"
        " --results {input.results:q} --scores {input.scores:q} --out {output:q} > {log:q} 2>&1"
