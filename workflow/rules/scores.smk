# Scores: full-data training runs per seed (checkpoints, forgetting and AUM), GraNd and EL2N from
# those checkpoints, the input-norm control, and the mean over seeds.

SCORING = f"{RUNS}/scoring/noise{{noise}}/seed{{seed}}"


rule train_scoring:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
    output:
        result=f"{SCORING}/result.json",
        checkpoints=[f"{SCORING}/ckpt_e{t}.pt" for t in CHECKPOINT_EPOCHS],
        forgetting=f"{RUNS}/scores/noise{{noise}}/forgetting/seed{{seed}}.csv",
        aum=f"{RUNS}/scores/noise{{noise}}/aum/seed{{seed}}.csv",
    params:
        rule="train_scoring",
        spec=as_json(
            lambda w: training_spec(
                w,
                w.seed,
                save_epochs=CHECKPOINT_EPOCHS,
                state_epochs=[],
                never_learned=config["scores"]["forgetting_never_learned"],
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
        f"{OUT}/logs/{{dataset}}/{{arch}}/train_scoring/noise{{noise}}/seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/train_scoring/noise{{noise}}/seed{{seed}}.tsv"
    shell:
        "datadiet train-scoring --spec {params.spec:q} --rule {params.rule} --wildcards {params.wildcards:q}"
        " --dataset {input.dataset:q} --labels {input.labels:q} --out-dir {params.out_dir:q}"
        " --forgetting {output.forgetting:q} --aum {output.aum:q} > {log:q} 2>&1"


# The parent of the linear-mode-connectivity experiment is scoring run 0 on clean data: the same
# job, which also keeps its full training state (optimizer included) at every spawn epoch.
use rule train_scoring as lmc_parent with:
    output:
        result=f"{SCORING}/result.json",
        checkpoints=[f"{SCORING}/ckpt_e{t}.pt" for t in CHECKPOINT_EPOCHS],
        forgetting=f"{RUNS}/scores/noise{{noise}}/forgetting/seed{{seed}}.csv",
        aum=f"{RUNS}/scores/noise{{noise}}/aum/seed{{seed}}.csv",
        spawn_states=[f"{SCORING}/state_e{t}.pt" for t in SPAWN_EPOCHS],
    wildcard_constraints:
        dataset=re.escape(LMC["dataset"]),
        arch=arch_of(LMC["dataset"]),
        noise=re.escape(CLEAN),
        seed="0",
    params:
        rule="lmc_parent",
        spec=as_json(
            lambda w: training_spec(
                w,
                w.seed,
                save_epochs=CHECKPOINT_EPOCHS,
                state_epochs=SPAWN_EPOCHS,
                never_learned=config["scores"]["forgetting_never_learned"],
            )
        ),
        wildcards=wildcards_json,
        out_dir=lambda w, output: os.path.dirname(output.result),


ruleorder: lmc_parent > train_scoring


rule score:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        checkpoint=f"{SCORING}/ckpt_e{{epoch}}.pt",
        train_result=f"{SCORING}/result.json",
    output:
        f"{RUNS}/scores/noise{{noise}}/{{kind}}_e{{epoch}}/seed{{seed}}.csv",
    params:
        rule="score",
        spec=as_json(
            lambda w: {
                "study": STUDY,
                "tracking": TRACKING,
                "threads": config["threads"],
                "device": config["device"],
                "dataset": w.dataset,
                "arch": w.arch,
                "kind": w.kind,
                "epoch": int(w.epoch),
                "run": int(w.seed),
                "noise": float(w.noise),
                "grand_chunk_size": config["scores"]["grand_chunk_size"],
            }
        ),
        wildcards=wildcards_json,
    threads: config["threads"]
    resources:
        **cluster_resources("score"),
    conda:
        "../../environment.yml"
    log:
        f"{OUT}/logs/{{dataset}}/{{arch}}/score/noise{{noise}}/{{kind}}_e{{epoch}}/seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/score/noise{{noise}}/{{kind}}_e{{epoch}}/seed{{seed}}.tsv"
    shell:
        "datadiet score --spec {params.spec:q} --rule {params.rule} --wildcards {params.wildcards:q}"
        " --dataset {input.dataset:q} --labels {input.labels:q} --checkpoint {input.checkpoint:q}"
        " --train-result {input.train_result:q} --out {output:q} > {log:q} 2>&1"


rule input_norm:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
    output:
        f"{RUNS}/scores/noise{{noise}}/input_norm/mean.csv",
    params:
        rule="input_norm",
        spec=as_json(lambda w: {"study": STUDY, "tracking": TRACKING, "dataset": w.dataset, "noise": float(w.noise)}),
        wildcards=wildcards_json,
    resources:
        **cluster_resources("score"),
    conda:
        "../../environment.yml"
    log:
        f"{OUT}/logs/{{dataset}}/{{arch}}/input_norm/noise{{noise}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/input_norm/noise{{noise}}.tsv"
    shell:
        "datadiet input-norm --spec {params.spec:q} --rule {params.rule} --wildcards {params.wildcards:q}"
        " --dataset {input.dataset:q} --labels {input.labels:q} --out {output:q} > {log:q} 2>&1"


rule aggregate_scores:
    input:
        lambda w: expand(f"{OUT}/{w.dataset}/{w.arch}/scores/noise{w.noise}/{w.score}/seed{{seed}}.csv", seed=SEEDS),
    output:
        f"{RUNS}/scores/noise{{noise}}/{{score}}/mean.csv",
    wildcard_constraints:
        score=r"forgetting|aum|(grand|el2n)_e\d+",
    resources:
        **cluster_resources("light"),
    conda:
        "../../environment.yml"
    log:
        f"{OUT}/logs/{{dataset}}/{{arch}}/aggregate_scores/noise{{noise}}/{{score}}.log",
    shell:
        "datadiet aggregate --inputs {input:q} --out {output:q} > {log:q} 2>&1"
