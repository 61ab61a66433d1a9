# Set-up: the decoded dataset, the label-noise variants, and the MLflow store (created once,
# before any job logs to it: several jobs creating a new SQLite store at once corrupt it).


rule prepare_data:
    input:
        lambda w: [DATASETS[w.dataset]["path"]] if DATASETS[w.dataset]["source"] != "torchvision" else [],
    output:
        DATASET,
    params:
        spec=as_json(lambda w: data_spec(w.dataset)),
        cache=f"{config['results_dir']}/cache",
    resources:
        **cluster_resources("light"),
    conda:
        "../../environment.yml"
    log:
        f"{OUT}/logs/{{dataset}}/prepare_data.log",
    shell:
        "datadiet prepare-data --spec {params.spec:q} --cache {params.cache:q} --out {output:q} > {log:q} 2>&1"


rule corrupt_labels:
    input:
        DATASET,
    output:
        LABELS,
    params:
        seed=config["noise"]["seed"],
    resources:
        **cluster_resources("light"),
    conda:
        "../../environment.yml"
    log:
        f"{OUT}/logs/{{dataset}}/corrupt_labels/noise{{noise}}.log",
    shell:
        "datadiet corrupt-labels --dataset {input:q} --fraction {wildcards.noise} --seed {params.seed}"
        " --out {output:q} > {log:q} 2>&1"


rule init_tracking:
    output:
        TRACKED,
    params:
        uri=TRACKING["uri"],
        experiment=STUDY,
        artifacts=f"{OUT}/mlflow/artifacts",
    resources:
        **cluster_resources("light"),
    conda:
        "../../environment.yml"
    log:
        f"{OUT}/logs/init_tracking.log",
    shell:
        "datadiet init-tracking --uri {params.uri:q} --experiment {params.experiment:q}"
        " --artifacts {params.artifacts:q} --out {output:q} > {log:q} 2>&1"
