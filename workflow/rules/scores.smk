# Scores: full-data training runs per seed (checkpoints + forgetting counts), GraNd and EL2N from
# those checkpoints, the input-norm control, and the mean over seeds.


rule train_scoring:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
    output:
        result=f"{OUT}/scoring/noise{{noise}}/seed{{seed}}/result.json",
        checkpoints=[f"{OUT}/scoring/noise{{noise}}/seed{{seed}}/ckpt_e{t}.pt" for t in CHECKPOINT_EPOCHS],
        forgetting=f"{OUT}/scores/noise{{noise}}/forgetting/seed{{seed}}.csv",
    params:
        spec=as_json(
            lambda w: training_spec(
                w.seed,
                w.noise,
                save_epochs=CHECKPOINT_EPOCHS,
                never_learned=config["scores"]["forgetting_never_learned"],
            )
        ),
        wildcards=wildcards_json,
        out_dir=lambda w, output: os.path.dirname(output.result),
    threads: config["threads"]
    log:
        f"{OUT}/logs/train_scoring/noise{{noise}}/seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/train_scoring/noise{{noise}}/seed{{seed}}.tsv"
    shell:
        "datadiet train-scoring --spec {params.spec:q} --rule {rule} --wildcards {params.wildcards:q}"
        " --dataset {input.dataset:q} --labels {input.labels:q} --out-dir {params.out_dir:q}"
        " --forgetting {output.forgetting:q} > {log:q} 2>&1"


rule score:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        checkpoint=f"{OUT}/scoring/noise{{noise}}/seed{{seed}}/ckpt_e{{epoch}}.pt",
        train_result=f"{OUT}/scoring/noise{{noise}}/seed{{seed}}/result.json",
    output:
        f"{OUT}/scores/noise{{noise}}/{{kind}}_e{{epoch}}/seed{{seed}}.csv",
    params:
        spec=as_json(
            lambda w: {
                "study": STUDY,
                "tracking": TRACKING,
                "threads": config["threads"],
                "model": config["model"],
                "kind": w.kind,
                "epoch": int(w.epoch),
                "run": int(w.seed),
                "noise": float(w.noise),
                "grand_chunk_size": config["scores"]["grand_chunk_size"],
            }
        ),
        wildcards=wildcards_json,
    threads: config["threads"]
    log:
        f"{OUT}/logs/score/noise{{noise}}/{{kind}}_e{{epoch}}/seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/score/noise{{noise}}/{{kind}}_e{{epoch}}/seed{{seed}}.tsv"
    shell:
        "datadiet score --spec {params.spec:q} --rule {rule} --wildcards {params.wildcards:q}"
        " --dataset {input.dataset:q} --labels {input.labels:q} --checkpoint {input.checkpoint:q}"
        " --train-result {input.train_result:q} --out {output:q} > {log:q} 2>&1"


rule input_norm:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
    output:
        f"{OUT}/scores/noise{{noise}}/input_norm/mean.csv",
    params:
        spec=as_json(lambda w: {"study": STUDY, "tracking": TRACKING, "noise": float(w.noise)}),
        wildcards=wildcards_json,
    log:
        f"{OUT}/logs/input_norm/noise{{noise}}.log",
    benchmark:
        f"{OUT}/benchmarks/input_norm/noise{{noise}}.tsv"
    shell:
        "datadiet input-norm --spec {params.spec:q} --rule {rule} --wildcards {params.wildcards:q}"
        " --dataset {input.dataset:q} --labels {input.labels:q} --out {output:q} > {log:q} 2>&1"


rule aggregate_scores:
    input:
        lambda w: expand(f"{OUT}/scores/noise{w.noise}/{w.score}/seed{{seed}}.csv", seed=SEEDS),
    output:
        f"{OUT}/scores/noise{{noise}}/{{score}}/mean.csv",
    wildcard_constraints:
        score=r"forgetting|(grand|el2n)_e\d+",
    log:
        f"{OUT}/logs/aggregate_scores/noise{{noise}}/{{score}}.log",
    shell:
        "datadiet aggregate --inputs {input:q} --out {output:q} > {log:q} 2>&1"
