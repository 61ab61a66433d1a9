# Set-up: the decoded dataset, the label-noise variants, and the MLflow store (created once,
# before any job logs to it: several jobs creating a new SQLite store at once corrupt it).


# Downloads run where the internet is (the submit host: a local rule); compute nodes often have none.
rule download:
    localrule: True
    output:
        path(layout.DOWNLOADED),
    wildcard_constraints:
        dataset=CONFIGURED,
    params:
        spec=lambda w: json.dumps(specs.data(STUDY, w.dataset), sort_keys=True),
    conda:
        "../envs/datadiet.yaml"
    log:
        job_log("{dataset}/download"),
    shell:
        f"{DATADIET} job download --spec {{params.spec:q}} --out {{output:q}} > {{log:q}} 2>&1"


# A size of the size sweep is read from the same source after the dataset itself, whose job has
# decoded it into the cache by then (jobs decoding one source at once would each decode it).
rule prepare_data:
    input:
        lambda w: specs.data_inputs(STUDY, w.dataset),
    output:
        DATASET,
    params:
        spec=lambda w: json.dumps(specs.decode(STUDY, w.dataset), sort_keys=True),
        cache=f"{config['results_dir']}/cache",
    resources:
        **cluster_resources("light"),
    conda:
        "../envs/datadiet.yaml"
    log:
        job_log("{dataset}/prepare_data"),
    shell:
        f"{DATADIET} job prepare-data --spec {{params.spec:q}} --cache {{params.cache:q}} --out {{output:q}} > {{log:q}} 2>&1"


rule corrupt_labels:
    input:
        DATASET,
    localrule: True
    output:
        LABELS,
    params:
        seed=config["noise"]["seed"],
    resources:
        **cluster_resources("light"),
    conda:
        "../envs/datadiet.yaml"
    log:
        job_log("{dataset}/corrupt_labels/noise{noise}"),
    shell:
        f"{DATADIET} job corrupt-labels --dataset {{input:q}} --fraction {{wildcards.noise}} --seed {{params.seed}}"
        " --out {output:q} > {log:q} 2>&1"


# The store is SQLite in results/<study>/, named by a path relative to the checkout (so a moved
# checkout keeps it), unless MLFLOW_TRACKING_URI (or the config's tracking.uri) names a server.
rule init_tracking:
    localrule: True
    output:
        TRACKED,
    params:
        store=lambda w, output: os.path.dirname(os.path.dirname(output[0])),
        experiment=STUDY.name,
    resources:
        **cluster_resources("light"),
    conda:
        "../envs/datadiet.yaml"
    log:
        job_log("init_tracking"),
    shell:
        f"{DATADIET} job init-tracking --store-dir {{params.store:q}} --experiment {{params.experiment:q}}"
        " --out {output:q} > {log:q} 2>&1"
