"""Where a kind of job runs on a Slurm cluster: the config's `cluster:` section as the resources
snakemake-executor-plugin-slurm reads (their names: the plugin's docs/further.md and submit_string.py)."""

from .config import ConfigError

# The optional settings of a kind of job (cluster.jobs.<kind>; qos and account also for the whole
# cluster, the job's own value first) and the plugin's resource for each.
PLUGIN_NAMES = {
    "gpu_model": "gpu_model",  # --gpus=<model>:<gpus>
    "gres": "gres",  # --gres=<gres>
    "cpus_per_gpu": "cpus_per_gpu",  # --cpus-per-gpu instead of --cpus-per-task=<threads>
    "constraint": "constraint",  # -C <constraint>
    "qos": "qos",  # --qos=<qos>
    "account": "slurm_account",  # -A <account>
    "slurm_extra": "slurm_extra",  # other sbatch options, verbatim
}


def gpu_as_gres(job):
    """Whether a job (cluster.jobs.<kind>) asks for its GPUs as a gres (gpu:1, gpu:a100:1), as the plugin tells."""
    return "gpu" in (job["gres"] or "")


def asks_for_gpu(job):
    return bool(job["gpus"]) or gpu_as_gres(job)


def partition(cluster, kind):
    """A kind of job's partition: its own, else gpu_partition for a GPU job and partition for the others."""
    job = cluster["jobs"][kind]
    return job["partition"] or cluster["gpu_partition" if asks_for_gpu(job) else "partition"]


def check_job(job, kind):
    """GPUs asked for one way: the plugin would pass both --gres and --gpus, or a model with no count."""
    if gpu_as_gres(job) and (job["gpus"] or job["gpu_model"]):
        raise ConfigError(f"cluster.jobs.{kind}: GPUs as gres ({job['gres']}) or as gpus and gpu_model, not both")
    if job["gpu_model"] and not job["gpus"]:
        raise ConfigError(f"cluster.jobs.{kind}: gpu_model {job['gpu_model']} without gpus")


def resources(cluster, kind):
    """A kind of job's resources: memory, time limit, GPUs, partition and the optional settings."""
    job = cluster["jobs"][kind]
    check_job(job, kind)
    settings = {
        "gpu": job["gpus"],
        "slurm_partition": partition(cluster, kind),
        **{PLUGIN_NAMES[name]: job[name] or cluster.get(name) for name in PLUGIN_NAMES},
    }
    return {"mem_mb": job["mem_mb"], "runtime": job["runtime"], **{k: v for k, v in settings.items() if v}}


def check_gpu_partition(cluster):
    """Submitting to Slurm, every job that asks for a GPU has a partition: without one it would go to the
    cluster's default partition, which on most clusters has no GPUs (rejected, or pending forever)."""
    kinds = sorted(kind for kind, job in cluster["jobs"].items() if asks_for_gpu(job) and not partition(cluster, kind))
    if kinds:
        raise ConfigError(
            f"cluster.gpu_partition is not set, and jobs of kind {', '.join(kinds)} ask for a GPU: set it in the"
            " config to a partition with GPUs (`sinfo -o '%P %G'` lists them), or cluster.jobs.<kind>.partition"
        )
