"""The commands of the README and docs/ exactly as typed, in a fresh copy of the checkout, from a shell
that has activated nothing: no .venv/bin on PATH, no VIRTUAL_ENV (as a new user runs them after `make study`)."""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time

import pytest
from mlflow.tracking import MlflowClient

from paths import CIFAR, ROOT

TINY_STUDY = ".venv/bin/snakemake --cores 2 --configfile config/tiny.yaml"
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}


def readme_commands():
    """The command lines of the code blocks of the README and of the docs it links, their comments cut."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    blocks = [b for page in pages for b in re.findall(r"^```[a-z]*\n(.*?)^```", page.read_text(), re.M | re.S)]
    lines = (line.split("  #")[0].strip() for block in blocks for line in block.splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def fresh_copy(tmp_path):
    """What a clone holds (tracked files), with the project's .venv and ../shared beside it."""
    checkout = tmp_path / "datadiet"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    (checkout / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    return checkout


def test_the_readme_shows_the_command_this_file_runs():
    assert TINY_STUDY in readme_commands()


@pytest.mark.skipif(not CIFAR.exists(), reason="the tiny study reads real CIFAR-10 (../shared/data)")
def test_the_tiny_study_as_typed_runs_its_jobs_from_a_shell_that_activated_nothing(tmp_path, monkeypatch):
    """Its first training jobs run to their results and MLflow runs (before, every job stopped at
    `datadiet: command not found`); then the study is stopped, as its whole run is the e2e test's."""
    checkout = fresh_copy(tmp_path)
    log = open(tmp_path / "snakemake.log", "w")
    proc = subprocess.Popen(
        shlex.split(TINY_STUDY),
        cwd=checkout,
        env=CLEAN_ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    results = checkout / "results" / "tiny"
    deadline = time.time() + 600
    while proc.poll() is None and time.time() < deadline and len(list(results.glob("**/result.json"))) < 2:
        time.sleep(2)
    os.killpg(proc.pid, signal.SIGINT)  # Snakemake stops its jobs and leaves the finished ones
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    output = (tmp_path / "snakemake.log").read_text()
    assert "command not found" not in output, output[-3000:]
    finished = [json.loads(p.read_text()) for p in results.glob("**/result.json")]
    assert len(finished) >= 2, output[-3000:]
    store = json.loads((results / "mlflow" / "store.json").read_text())
    monkeypatch.chdir(checkout)  # the store's URI is relative to the checkout
    client = MlflowClient(store["uri"])
    for result in finished:
        assert client.get_run(result["run_id"]).info.status == "FINISHED"
