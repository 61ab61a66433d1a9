# The size sweep: pruning gain against training-set size. Each size is a dataset of its own (a nested
# class-balanced subset, made by prepare_data), scored by short scoring runs cut at the sweep's score
# epoch; its retraining runs are the retrain rule's (random, <score>, easy-<score>, full).


# A scoring run on a subset and its score in one job (the score takes seconds: not worth a job of its own);
# each its own MLflow run, as in the train_scoring and score rules.
rule sweep_scoring:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
    output:
        result=f"{SCORING}/result.json",
        checkpoint=path(layout.CHECKPOINT, epoch=names.Score.parse(S.sweep["score"]).epoch),
        scores=seed_scores([S.sweep["score"]]),
    wildcard_constraints:
        dataset=SUBSETS,
    params:
        rule="sweep_scoring",
        spec=spec(lambda w: S.sweep_scoring_spec(w.dataset, w.arch, w.noise, w.seed)),
        score_spec=run_specs(layout.SEED_SCORES, score_spec, "scores"),
        wildcards=wildcards_json,
        out_dir=lambda w, output: os.path.dirname(output.result),
    threads: config["threads"]
    resources:
        **cluster_resources("train"),
    conda:
        "../envs/datadiet.yaml"
    log:
        train=f"{OUT}/logs/{{dataset}}/{{arch}}/sweep_scoring/noise{{noise}}/seed{{seed}}.log",
        score=f"{OUT}/logs/{{dataset}}/{{arch}}/sweep_scoring/noise{{noise}}/seed{{seed}}.score.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/sweep_scoring/noise{{noise}}/seed{{seed}}.tsv"
    shell:
        job("train-scoring", log="log.train", dataset="input.dataset", labels="input.labels", out_dir="params.out_dir")
        + " && "
        + job(
            "score",
            spec="params.score_spec",
            log="log.score",
            dataset="input.dataset",
            labels="input.labels",
            checkpoint="output.checkpoint",
            train_result="output.result",
            out="output.scores",
        )
