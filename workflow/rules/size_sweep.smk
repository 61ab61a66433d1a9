# The size sweep: pruning gain against training-set size. Each size is a dataset of its own (a nested
# class-balanced subset, made by prepare_data), scored by short scoring runs cut at the sweep's score
# epoch; its retraining runs are the retrain rule's (random, <score>, easy-<score>, full).


rule sweep_scoring:
    input:
        dataset=DATASET,
        labels=LABELS,
        tracked=TRACKED,
    output:
        result=f"{SCORING}/result.json",
        checkpoint=path(layout.CHECKPOINT, epoch=names.Score.parse(S.sweep["score"]).epoch),
    wildcard_constraints:
        dataset=SUBSETS,
    params:
        rule="sweep_scoring",
        spec=spec(lambda w: S.sweep_scoring_spec(w.dataset, w.arch, w.noise, w.seed)),
        wildcards=wildcards_json,
        out_dir=lambda w, output: os.path.dirname(output.result),
    threads: config["threads"]
    resources:
        **cluster_resources("train"),
    conda:
        "../envs/datadiet.yaml"
    log:
        f"{OUT}/logs/{{dataset}}/{{arch}}/sweep_scoring/noise{{noise}}/seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{dataset}}/{{arch}}/sweep_scoring/noise{{noise}}/seed{{seed}}.tsv"
    shell:
        job("train-scoring", dataset="input.dataset", labels="input.labels", out_dir="params.out_dir")
