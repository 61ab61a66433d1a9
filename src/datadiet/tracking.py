"""MLflow at the edge of a job: one run per training or scoring job, FAILED or KILLED if it dies, and
replaced (its tag replaced_by) by the run of the job's next try."""

import contextlib
import hashlib
import os
import socket
import subprocess
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from . import stop
from .train import Callback


def resolve_uri(uri):
    """MLFLOW_TRACKING_URI wins over the config, so a cluster can point every job at its server."""
    return os.environ.get("MLFLOW_TRACKING_URI") or uri


def init_store(uri, experiment, artifact_root):
    """Create the store (schema migrations) and the experiment once, before jobs start.

    Several jobs creating a new SQLite store at once corrupt it, hence this single first step.
    """
    client = MlflowClient(resolve_uri(uri))
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    # A tracking server stores the artifacts it is sent (mlflow-artifacts:/); only a local store
    # gets a folder of ours.
    served = resolve_uri(uri).startswith(("http://", "https://"))
    location = Path(artifact_root).resolve().as_uri() if artifact_root and not served else None
    return client.create_experiment(experiment, artifact_location=location)


def server_address(host, port):
    """The URI jobs reach a server bound to `host` at: its own name where it listens on every interface."""
    return f"http://{socket.getfqdn() if host == '0.0.0.0' else host}:{port}"


def server_command(store_dir, host, port, backend_uri=None):
    """`mlflow server` for a cluster: runs in a database (SQLite in `store_dir` unless given; the server
    creates it once, before any job connects), artifacts sent to the server and kept in `store_dir`."""
    store_dir = Path(store_dir).resolve()
    command = [
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_uri or f"sqlite:///{store_dir}/mlflow.db",
        "--serve-artifacts",
        "--artifacts-destination",
        str(store_dir / "artifacts"),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if host == "0.0.0.0":  # MLflow accepts only localhost and private addresses unless told the name
        name = socket.getfqdn()
        command += ["--allowed-hosts", f"{name},{name}:{port},localhost,localhost:{port}"]
    return command


def git_commit():
    """The commit of the datadiet source this job runs, '+dirty' if it has uncommitted changes."""
    src = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", src, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", src, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def flatten(params, prefix=""):
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def links_description(runs):
    """Markdown for a run's description (the run page shows it): a link to the page of each run it
    consumed, given as (experiment id, run id, run name), so a chain of runs can be followed by clicking."""
    links = [f"- [{name}](#/experiments/{experiment_id}/runs/{run_id})" for experiment_id, run_id, name in runs]
    return "\n".join(["Uses the outputs of:", "", *links])


def job_tag(output):
    """What tells the runs of one job apart from those of others: its main output's path."""
    return hashlib.sha256(str(output).encode()).hexdigest()[:16]


def alive_here(tags):
    """Whether a run's process is alive on this machine (a run of another machine counts as dead)."""
    if tags.get("host") != socket.gethostname() or not tags.get("pid", "").isdigit():
        return False
    try:
        os.kill(int(tags["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def replace_earlier_runs(client, experiment_id, job, run_id):
    """Earlier runs of the same job get a tag naming the run that replaces them; one still RUNNING
    (its job was killed with no chance to end it: SIGKILL, a node failure) is marked KILLED."""
    for old in client.search_runs(
        [experiment_id], f"tags.job = '{job}' and attributes.run_id != '{run_id}'", max_results=1000
    ):
        if "replaced_by" in old.data.tags or alive_here(old.data.tags):
            continue
        client.set_tag(old.info.run_id, "replaced_by", run_id)
        if old.info.status == "RUNNING":
            client.set_terminated(old.info.run_id, "KILLED")


def start_run(experiment, name, params, tags, output):
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        raise RuntimeError(
            f"MLflow experiment {experiment!r} does not exist at {mlflow.get_tracking_uri()}; "
            "run `datadiet job init-tracking` (the workflow's first rule) before jobs start"
        )
    job = job_tag(output)
    tags = {
        "git_commit": git_commit(),
        "output": str(output),
        "job": job,
        "host": socket.gethostname(),
        "pid": str(os.getpid()),
        **{k: str(v) for k, v in tags.items()},
    }
    client = MlflowClient()
    consumed = [c for c in tags.get("consumed_runs", "").split(",") if c]
    if consumed:
        # A search, not get_run: runs missing from this store (made anew since they ran) get no link.
        quoted = ",".join(f"'{c}'" for c in consumed)
        runs = client.search_runs(
            [found.experiment_id], f"attributes.run_id IN ({quoted})", order_by=["attributes.run_name"]
        )
        if runs:
            tags["mlflow.note.content"] = links_description(
                [(r.info.experiment_id, r.info.run_id, r.info.run_name) for r in runs]
            )
    stop.point("run:start")
    stop.check()  # a stop before the run exists leaves no run
    run = mlflow.start_run(experiment_id=found.experiment_id, run_name=name, tags=tags)
    stop.point("run:started")
    replace_earlier_runs(client, found.experiment_id, job, run.info.run_id)
    mlflow.log_params({k: str(v) for k, v in flatten(params).items()})
    return run


@contextlib.contextmanager
def job_run(uri, experiment, name, params, tags, output, ends_job=True):
    """An MLflow run around one job, with the job's resolved parameters and provenance tags; the runs
    named in the tag consumed_runs are linked from its description. `output`: the job's main output,
    which names the job (tag `job`), so that a rerun replaces the runs of earlier tries.

    A stop (stop.Stopped) or an error inside ends the run KILLED or FAILED. With `ends_job`, the run's
    end is the end of the job's work: once it is FINISHED, a stop no longer interrupts the job.
    """
    mlflow.set_tracking_uri(resolve_uri(uri))
    try:
        with stop.shielded():
            run = start_run(experiment, name, params, tags, output)
        yield run
    except BaseException as error:
        if mlflow.active_run() is not None:  # also a run whose start failed half-way (its params, say)
            with stop.shielded():
                mlflow.end_run("KILLED" if stop.received() or isinstance(error, KeyboardInterrupt) else "FAILED")
        raise
    with stop.shielded():
        stop.point("run:end")
        mlflow.end_run("FINISHED")
        if ends_job:
            stop.done()


class LogMetrics(Callback):
    """Per-epoch training metrics into the active MLflow run."""

    def on_epoch_end(self, epoch, step, metrics):
        log_metrics(metrics, step=epoch)


def log_metrics(metrics, step=None):
    with stop.shielded():
        mlflow.log_metrics(metrics, step=step)


def log_artifact(path):
    with stop.shielded():
        mlflow.log_artifact(str(path))
