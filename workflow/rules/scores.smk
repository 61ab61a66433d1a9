# Scores: full-data training runs per seed (checkpoints, forgetting and AUM), GraNd and EL2N from
# those checkpoints, the input-norm control, and the mean over seeds.

SCORING = path(layout.SCORING)


rule train_scoring:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
    output:
        result=f"{SCORING}/result.json",
        checkpoints=[path(layout.CHECKPOINT, epoch=t) for t in S.checkpoint_epochs],
        forgetting=path(layout.SEED_SCORES, score="forgetting"),
        aum=path(layout.SEED_SCORES, score="aum"),
    wildcard_constraints:
        dataset=CONFIGURED,
    params:
        rule="train_scoring",
        spec=spec(lambda w: S.scoring_spec(w.dataset, w.arch, w.noise, w.seed)),
        wildcards=wildcards_json,
        out_dir=lambda w, output: os.path.dirname(output.result),
    threads: config["threads"]
    resources:
        **cluster_resources("train"),
    conda:
        "../envs/datadiet.yaml"
    log:
        f"{OUT}/logs/{{dataset}}/{{arch}}/train_scoring/noise{{noise}}/seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/train_scoring/noise{{noise}}/seed{{seed}}.tsv"
    shell:
        job(
            "train-scoring",
            dataset="input.dataset",
            labels="input.labels",
            out_dir="params.out_dir",
            forgetting="output.forgetting",
            aum="output.aum",
        )


# The parents of the linear-mode-connectivity experiment are the scoring runs of seeds
# 0..experiments.lmc.parents-1 on clean data: the same jobs, which also keep their full training
# state (optimizer included) at every spawn epoch.
use rule train_scoring as lmc_parent with:
    output:
        result=f"{SCORING}/result.json",
        checkpoints=[path(layout.CHECKPOINT, epoch=t) for t in S.checkpoint_epochs],
        forgetting=path(layout.SEED_SCORES, score="forgetting"),
        aum=path(layout.SEED_SCORES, score="aum"),
        spawn_states=[path(layout.STATE, epoch=t) for t in S.spawn_epochs],
    wildcard_constraints:
        dataset=re.escape(S.lmc["dataset"]),
        arch=S.arch_of(S.lmc["dataset"]),
        noise=re.escape(S.clean),
        seed="|".join(map(str, S.parents)) or "(?!)",  # no LMC: matches nothing
    params:
        rule="lmc_parent",
        spec=spec(lambda w: S.scoring_spec(w.dataset, w.arch, w.noise, w.seed, spawn=True)),
        wildcards=wildcards_json,
        out_dir=lambda w, output: os.path.dirname(output.result),


ruleorder: lmc_parent > train_scoring


# Every GraNd and EL2N score of a scoring run in one job, one after another (each its own MLflow run):
# on clean data all the study's scores, at a noise level the scores its experiments select by (a
# size-sweep subset's score is made by its scoring job, sweep_scoring).
rule score:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
        checkpoints=checkpoints_of(S.scored),
        train_result=f"{SCORING}/result.json",
    output:
        scores=seed_scores(S.scored),
    wildcard_constraints:
        dataset=CONFIGURED,
        noise=re.escape(S.clean),
    params:
        rule="score",
        spec=run_specs(layout.SEED_SCORES, score_spec, "scores"),
        wildcards=wildcards_json,
    threads: config["threads"]
    resources:
        **cluster_resources("score"),
    conda:
        "../envs/datadiet.yaml"
    log:
        f"{OUT}/logs/{{dataset}}/{{arch}}/score/noise{{noise}}/seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/score/noise{{noise}}/seed{{seed}}.tsv"
    shell:
        job(
            "score",
            dataset="input.dataset",
            labels="input.labels",
            checkpoint="input.checkpoints",
            train_result="input.train_result",
            out="output.scores",
        )


if S.noisy_scored:

    use rule score as score_noisy with:
        input:
            dataset=DATASET,
            labels=LABELS,
            tracked=TRACKED,
            checkpoints=checkpoints_of(S.noisy_scored),
            train_result=f"{SCORING}/result.json",
        output:
            scores=seed_scores(S.noisy_scored),
        wildcard_constraints:
            dataset=CONFIGURED,
            noise="|".join(map(re.escape, S.noisy)),
        params:
            rule="score_noisy",
            spec=run_specs(layout.SEED_SCORES, score_spec, "scores"),
            wildcards=wildcards_json,


rule input_norm:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
    localrule: True
    output:
        path(layout.MEAN_SCORES, score="input_norm"),
    params:
        rule="input_norm",
        spec=spec(lambda w: {"dataset": w.dataset, "noise": float(w.noise)}),
        wildcards=wildcards_json,
    resources:
        **cluster_resources("light"),
    conda:
        "../envs/datadiet.yaml"
    log:
        f"{OUT}/logs/{{dataset}}/{{arch}}/input_norm/noise{{noise}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/input_norm/noise{{noise}}.tsv"
    shell:
        job("input-norm", dataset="input.dataset", labels="input.labels", out="output")


rule aggregate_scores:
    input:
        lambda w: [path(layout.SEED_SCORES, **dict(w.items()), seed=s) for s in S.seeds_of(w.dataset)],
    localrule: True
    output:
        path(layout.MEAN_SCORES),
    wildcard_constraints:
        score=names.SEEDED,
    resources:
        **cluster_resources("light"),
    conda:
        "../envs/datadiet.yaml"
    log:
        f"{OUT}/logs/{{dataset}}/{{arch}}/aggregate_scores/noise{{noise}}/{{score}}.log",
    shell:
        f"{DATADIET} job aggregate --inputs {{input:q}} --out {{output:q}} > {{log:q}} 2>&1"
