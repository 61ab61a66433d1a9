"""MLflow at the edge of a job: one run per training or scoring job, FAILED or KILLED if it dies, and
replaced (its tag replaced_by) by the run of the job's next try, unless that try resumes the training
it had saved: then it goes on in the same run."""

import contextlib
import hashlib
import os
import socket
import subprocess
import time
import warnings
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..train import Callback
from . import stop

# The MLflow UI opens an experiment of this kind on its runs table (model training), not on its GenAI
# pages (traces, evaluations).
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


def resolve_uri(uri):
    """MLFLOW_TRACKING_URI wins over the config, so a cluster can point every job at its server."""
    return os.environ.get("MLFLOW_TRACKING_URI") or uri


def study_store(uri, environ=os.environ):
    """The store a study's job tracks to (MLFLOW_TRACKING_URI, else `uri`). An SQLite file is refused
    inside a Slurm job: jobs on many nodes writing one over a network file system lock it ("database
    is locked"), lose runs or corrupt it."""
    uri = resolve_uri(uri)
    if uri.startswith("sqlite:") and "SLURM_JOB_ID" in environ:
        raise ValueError(
            f"Slurm job {environ['SLURM_JOB_ID']} would track to the SQLite file {uri}, which jobs on several "
            "nodes corrupt: start the tracking server on a node the jobs reach (`datadiet mlflow-server --host "
            "0.0.0.0`, or `make mlflow-server`) and export the MLFLOW_TRACKING_URI it prints before running "
            "Snakemake"
        )
    return uri


def init_store(uri, experiment, artifact_root):
    """Create the store (schema migrations) and the experiment once, before jobs start; an experiment
    made before it had its tags gets them.

    Several jobs creating a new SQLite store at once corrupt it, hence this single first step.
    """
    client = MlflowClient(resolve_uri(uri))
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        for key, value in EXPERIMENT_TAGS.items():
            if key not in found.tags:
                client.set_experiment_tag(found.experiment_id, key, value)
        return found.experiment_id
    # A tracking server stores the artifacts it is sent (mlflow-artifacts:/); only a local store
    # gets a folder of ours.
    served = resolve_uri(uri).startswith(("http://", "https://"))
    location = Path(artifact_root).resolve().as_uri() if artifact_root and not served else None
    return client.create_experiment(experiment, artifact_location=location, tags=EXPERIMENT_TAGS)


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


def as_logged(params):
    """`params` as MLflow keeps them: flat, every value a string."""
    return {k: str(v) for k, v in flatten(params).items()}


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


def resumable(client, run_id, experiment_id, params):
    """Whether the run `run_id` of an earlier try can go on: it is in this store's experiment, not
    deleted, and has these params (MLflow refuses to change a param's value)."""
    try:
        run = client.get_run(run_id)
    except MlflowException:  # not in this store: made anew, or another one since
        return False
    return (
        run.info.experiment_id == experiment_id
        and run.info.lifecycle_stage == "active"
        and run.data.params == as_logged(params)
    )


def last_steps(client, run_id):
    """Metric name -> the last step the run has of it (but for system metrics: MLflow numbers those)."""
    logged = [key for key in client.get_run(run_id).data.metrics if not key.startswith("system/")]
    return {key: max(m.step for m in client.get_metric_history(run_id, key)) for key in logged}


# Metric name -> the last step the active run already has, when it resumes an earlier try: that try
# logged the steps the resumed training takes again (from its last saved state), so they are not logged
# twice.
_logged_steps = {}


def start_run(experiment, name, params, tags, output, resume=None, system_metrics=False):
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
    if resume is not None and not resumable(client, resume, found.experiment_id, params):
        resume = None
    _logged_steps.clear()
    if resume is not None:
        _logged_steps.update(last_steps(client, resume))
    stop.point("run:start")
    stop.check()  # a stop before the run exists leaves no run
    run = mlflow.start_run(
        run_id=resume,
        experiment_id=found.experiment_id,
        run_name=name,
        tags=tags,
        log_system_metrics=system_metrics or None,  # None: as MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING says
    )
    stop.point("run:started")
    replace_earlier_runs(client, found.experiment_id, job, run.info.run_id)
    if resume is None:
        mlflow.log_params(as_logged(params))
    return run


@contextlib.contextmanager
def job_run(uri, experiment, name, params, tags, output, ends_job=True, resume=None, system_metrics=False):
    """An MLflow run around one job, with the job's resolved parameters and provenance tags; the runs
    named in the tag consumed_runs are linked from its description. `output`: the job's main output,
    which names the job (tag `job`), so that a rerun replaces the runs of earlier tries.
    `resume`: the run of an earlier try, which this one goes on with (if it still can: `resumable`)
    rather than replace. `system_metrics`: the run samples CPU, memory and GPU use (every 10 s).

    A stop (stop.Stopped) or an error inside ends the run KILLED or FAILED. With `ends_job`, the run's
    end is the end of the job's work: once it is FINISHED, a stop no longer interrupts the job.
    """
    mlflow.set_tracking_uri(resolve_uri(uri))
    try:
        with stop.shielded():
            run = start_run(experiment, name, params, tags, output, resume, system_metrics)
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
    """Into the active run, but for the steps it already has (`_logged_steps`)."""
    new = {k: v for k, v in metrics.items() if (step or 0) > _logged_steps.get(k, -1)}
    if new:
        with stop.shielded():
            mlflow.log_metrics(new, step=step)


LOG_INPUT_TRIES = 5


def log_training_set(name, indices, labels, source):
    """The examples a run trains on as its dataset input (the runs table's Datasets column): their
    `indices` in the study's training set and their (possibly noisy) `labels`, named `name`, with a
    digest of both, so that runs on the same subset share one dataset; `source`: the dataset file."""
    features, targets = indices.numpy(), labels.numpy()
    digest = hashlib.sha256(features.tobytes() + targets.tobytes()).hexdigest()[:16]
    with warnings.catch_warnings():  # MLflow registers local files as a source twice, then warns it picked one
        warnings.filterwarnings("ignore", "The specified dataset source can be interpreted in multiple ways")
        dataset = mlflow.data.from_numpy(features, Path(source).resolve().as_uri(), targets, name, digest)
    for attempt in range(LOG_INPUT_TRIES):
        try:
            with stop.shielded():
                mlflow.log_input(dataset, context="training")
            return
        except MlflowException:
            # Jobs that start together on the same subset race to create its dataset: the store keeps
            # one and refuses the others (UNIQUE constraint); asked again, it finds that one.
            if attempt == LOG_INPUT_TRIES - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


def log_artifact(path):
    with stop.shielded():
        mlflow.log_artifact(str(path))
