# Scores: full-data training runs per seed (checkpoints, forgetting and AUM), GraNd and EL2N from
# those checkpoints, the input-norm control, and the mean over seeds.

SCORING = path(layout.SCORING)
# Datasets whose scoring runs train to the end (forgetting, AUM, spawn states) and are scored in jobs of
# their own; with scores.short_runs none: short_scoring cuts them at their last checkpoint.
WHOLE_RUN = "(?!)" if STUDY.short_scoring else CONFIGURED


rule train_scoring:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
    output:
        result=f"{SCORING}/result.json",
        checkpoints=[path(layout.CHECKPOINT, epoch=t) for t in STUDY.checkpoint_epochs],
        forgetting=path(layout.SEED_SCORES, score="forgetting"),
        aum=path(layout.SEED_SCORES, score="aum"),
    wildcard_constraints:
        dataset=WHOLE_RUN,
    params:
        rule="train_scoring",
        spec=spec(specs.scoring),
        wildcards=wildcards_json,
        out_dir=lambda w, output: os.path.dirname(output.result),
    threads: config["threads"]
    priority: 1  # before the other training jobs: every selection waits for the scoring runs
    resources:
        **cluster_resources("train"),
    conda:
        "../envs/datadiet.yaml"
    log:
        run_log("train_scoring", "noise{noise}/seed{seed}"),
    benchmark:
        run_benchmark("train_scoring", "noise{noise}/seed{seed}")
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
        checkpoints=[path(layout.CHECKPOINT, epoch=t) for t in STUDY.checkpoint_epochs],
        forgetting=path(layout.SEED_SCORES, score="forgetting"),
        aum=path(layout.SEED_SCORES, score="aum"),
        spawn_states=[path(layout.STATE, epoch=t) for t in STUDY.spawn_epochs],
    wildcard_constraints:
        dataset=re.escape(STUDY.lmc["dataset"]),
        arch=STUDY.arch_of(STUDY.lmc["dataset"]),
        noise=re.escape(STUDY.clean),
        seed="|".join(map(str, STUDY.parents)) or "(?!)",  # no LMC: matches nothing
    params:
        rule="lmc_parent",
        spec=spec(specs.scoring, True),
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
        checkpoints=checkpoints_of(STUDY.scored),
        train_result=f"{SCORING}/result.json",
    output:
        scores=seed_scores(STUDY.scored),
    wildcard_constraints:
        dataset=WHOLE_RUN,
        noise=re.escape(STUDY.clean),
    params:
        rule="score",
        spec=run_specs(layout.SEED_SCORES, specs.score, "scores"),
        wildcards=wildcards_json,
    threads: config["threads"]
    resources:
        **cluster_resources("score"),
    conda:
        "../envs/datadiet.yaml"
    log:
        run_log("score", "noise{noise}/seed{seed}"),
    benchmark:
        run_benchmark("score", "noise{noise}/seed{seed}")
    shell:
        job(
            "score",
            dataset="input.dataset",
            labels="input.labels",
            checkpoint="input.checkpoints",
            train_result="input.train_result",
            out="output.scores",
        )


if STUDY.noisy_scored:

    use rule score as score_noisy with:
        input:
            dataset=DATASET,
            labels=LABELS,
            tracked=TRACKED,
            checkpoints=checkpoints_of(STUDY.noisy_scored),
            train_result=f"{SCORING}/result.json",
        output:
            scores=seed_scores(STUDY.noisy_scored),
        wildcard_constraints:
            dataset=CONFIGURED,
            noise="|".join(map(re.escape, STUDY.noisy)),
        params:
            rule="score_noisy",
            spec=run_specs(layout.SEED_SCORES, specs.score, "scores"),
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
        spec=spec(specs.input_norm),
        wildcards=wildcards_json,
    resources:
        **cluster_resources("light"),
    conda:
        "../envs/datadiet.yaml"
    log:
        run_log("input_norm", "noise{noise}"),
    benchmark:
        run_benchmark("input_norm", "noise{noise}")
    shell:
        job("input-norm", dataset="input.dataset", labels="input.labels", out="output")


rule aggregate_scores:
    input:
        lambda w: [path(layout.SEED_SCORES, **dict(w.items()), seed=s) for s in STUDY.seeds_of(w.dataset)],
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
        run_log("aggregate_scores", "noise{noise}/{score}"),
    shell:
        f"{DATADIET} job aggregate --inputs {{input:q}} --out {{output:q}} > {{log:q}} 2>&1"


# A short scoring run on a size-sweep subset, cut at the sweep's score epoch, and its score in one job (the score takes seconds: not worth a job of its own);
# each its own MLflow run, as in the train_scoring and score rules.
rule sweep_scoring:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
    output:
        result=f"{SCORING}/result.json",
        checkpoints=checkpoints_of([STUDY.sweep["score"]]),
        scores=seed_scores([STUDY.sweep["score"]]),
    wildcard_constraints:
        dataset=SUBSETS,
    params:
        rule="sweep_scoring",
        spec=spec(specs.sweep_scoring),
        score_spec=run_specs(layout.SEED_SCORES, specs.score, "scores"),
        score_checkpoints=score_checkpoints([STUDY.sweep["score"]]),
        wildcards=wildcards_json,
        out_dir=lambda w, output: os.path.dirname(output.result),
    threads: config["threads"]
    priority: 1  # before the other training jobs: every selection waits for the scoring runs
    resources:
        **cluster_resources("train"),
    conda:
        "../envs/datadiet.yaml"
    log:
        train=run_log("sweep_scoring", "noise{noise}/seed{seed}"),
        score=run_log("sweep_scoring", "noise{noise}/seed{seed}.score"),
    benchmark:
        run_benchmark("sweep_scoring", "noise{noise}/seed{seed}")
    shell:
        job("train-scoring", log="log.train", dataset="input.dataset", labels="input.labels", out_dir="params.out_dir")
        + " && "
        + job(
            "score",
            spec="params.score_spec",
            log="log.score",
            dataset="input.dataset",
            labels="input.labels",
            checkpoint="params.score_checkpoints",
            train_result="output.result",
            out="output.scores",
        )


# With scores.short_runs, the scoring runs of the configured datasets likewise: cut at the last checkpoint
# a score needs, every GraNd and EL2N score of the study made in the same job.
if STUDY.short_scoring:

    use rule sweep_scoring as short_scoring with:
        output:
            result=f"{SCORING}/result.json",
            checkpoints=[path(layout.CHECKPOINT, epoch=t) for t in STUDY.checkpoint_epochs],
            scores=seed_scores(STUDY.scored),
        wildcard_constraints:
            dataset=CONFIGURED,
            noise=re.escape(STUDY.clean),
        params:
            rule="short_scoring",
            spec=spec(specs.short_scoring, STUDY.checkpoint_epochs),
            score_spec=run_specs(layout.SEED_SCORES, specs.score, "scores"),
            score_checkpoints=score_checkpoints(STUDY.scored),
            wildcards=wildcards_json,
            out_dir=lambda w, output: os.path.dirname(output.result),
        log:
            train=run_log("short_scoring", "noise{noise}/seed{seed}"),
            score=run_log("short_scoring", "noise{noise}/seed{seed}.score"),
        benchmark:
            run_benchmark("short_scoring", "noise{noise}/seed{seed}")


# With scores.seeds_per_repeat, the mean a retraining repeat selects by: over its own scoring runs.
use rule aggregate_scores as aggregate_repeat_scores with:
    input:
        lambda w: [path(layout.SEED_SCORES, **dict(w.items()), seed=s) for s in STUDY.repeat_seeds(int(w.rep))],
    output:
        path(layout.REPEAT_SCORES),
    log:
        run_log("aggregate_scores", "noise{noise}/{score}/rep{rep}"),
