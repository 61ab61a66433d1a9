"""Where a kind of job runs on a Slurm cluster: the config's `cluster:` section as the resources
snakemake-executor-plugin-slurm reads."""


def resources(cluster, kind):
    """Memory, time limit, GPUs and partition of a kind of job (cluster.jobs.<kind>)."""
    job = cluster["jobs"][kind]
    partition = (job["gpus"] and cluster["gpu_partition"]) or cluster["partition"]
    return {
        "mem_mb": job["mem_mb"],
        "runtime": job["runtime"],
        **({"gpu": job["gpus"]} if job["gpus"] else {}),
        **({"slurm_partition": partition} if partition else {}),
    }
