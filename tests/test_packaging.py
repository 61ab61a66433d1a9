"""Packaging: pyproject.toml's ranges and extras, requirements.lock's exact set, the two conda environments
and the Makefile's Python check, each against the others and against what the code imports."""

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from paths import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
BASE = [Requirement(r) for r in PROJECT["dependencies"]]
EXTRAS = {name: [Requirement(r) for r in reqs] for name, reqs in PROJECT["optional-dependencies"].items()}
LOCK = ROOT / "requirements.lock"
JOBS_ENV = ROOT / "workflow" / "envs" / "datadiet.yaml"
# The lock is resolved for Linux x86_64 and Python 3.11 (Makefile, `make lock`).
LOCK_ENV = {**default_environment(), "sys_platform": "linux", "platform_system": "Linux", "python_version": "3.11"}
WORKFLOW_ONLY = {"snakemake", "snakemake-executor-plugin-slurm", "jsonschema"}
TEST_TOOLS = {"pytest", "playwright", "ruff"}


def names(requirements):
    return {canonicalize_name(r.name) for r in requirements}


def locked():
    """requirements.lock as {canonical name: version}; every line of it pins one exact version."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==" and not req.marker, line
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def jobs_env():
    """workflow/envs/datadiet.yaml: its conda packages and its pip lines."""
    deps = yaml.safe_load(JOBS_ENV.read_text())["dependencies"]
    pip = [line for d in deps if isinstance(d, dict) for line in d["pip"]]
    return [d for d in deps if isinstance(d, str)], pip


@pytest.mark.parametrize("extra", [None, *EXTRAS])
def test_the_lock_pins_a_version_inside_every_range(extra):
    pins = locked()
    requirements = BASE if extra is None else EXTRAS[extra]
    constraints = [Requirement(r) for r in PYPROJECT["tool"]["uv"]["constraint-dependencies"]]
    for req in requirements + constraints:
        if req.marker and not req.marker.evaluate(LOCK_ENV):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} is not in requirements.lock: `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req}: the lock has {pins[name]}"


def test_pyproject_gives_ranges_not_exact_pins():
    for req in BASE + [r for reqs in EXTRAS.values() for r in reqs]:
        assert all(spec.operator != "==" for spec in req.specifier), (
            f"{req}: a range here, the exact version in the lock"
        )


def test_the_lock_says_how_to_regenerate_it_with_every_extra():
    header = LOCK.read_text().splitlines()[:3]
    command = next(line.strip("# ") for line in header if "uv pip compile" in line)
    assert command.startswith("uv pip compile pyproject.toml") and "--python-version 3.11" in command
    assert set(re.findall(r"--extra (\S+)", command)) == set(EXTRAS)
    # `make lock` runs that very command (-n: print it only).
    env = {k: v for k, v in os.environ.items() if k != "MAKEFLAGS"}
    make = ["make", "--no-print-directory", "-n", "lock", "UV=uv"]  # under `make test` too: no "Entering directory"
    dry = subprocess.run(make, cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    assert [word for word in dry.stdout.split() if word != "\\"] == command.split()


def test_prune_users_do_not_pull_snakemake_or_the_test_tools():
    assert not names(BASE) & (WORKFLOW_ONLY | TEST_TOOLS)
    assert {"snakemake", "snakemake-executor-plugin-slurm"} <= names(EXTRAS["workflow"])
    assert TEST_TOOLS <= names(EXTRAS["test"])
    # `datadiet prune` tracks its runs in MLflow (an SQLite store by default), so full mlflow is a base need.
    assert "mlflow" in names(BASE)


def test_the_system_metrics_mlflow_samples_on_gpu_jobs_have_their_packages():
    # MLflow imports psutil (CPU, memory) and pynvml (GPU) only when a run asks for system metrics.
    if "log_system_metrics" in (ROOT / "src" / "datadiet" / "runtime" / "tracking.py").read_text():
        assert {"psutil", "nvidia-ml-py"} <= names(BASE)


def via(lock_text):
    """{package: the packages the lock says need it}, from uv's `# via` comments."""
    needs, current = {}, None
    for line in lock_text.splitlines():
        if line[:1].isalpha():
            current = canonicalize_name(line.split("==")[0])
            needs[current] = set()
        elif current and line.strip().startswith("#"):
            name = line.strip("# ").removeprefix("via").strip()
            if name:
                needs[current].add(canonicalize_name(name.split(" ")[0]))
    return needs


def test_with_torch_index_only_the_cuda_libraries_of_pypis_torch_leave_the_lock(tmp_path):
    """With TORCH_INDEX, torch brings its own CUDA libraries: `make setup` installs the lock without those
    of PyPI's CUDA 13 build, and nothing else goes (nvidia-ml-py, triton, sympy stay)."""
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    env = {k: v for k, v in os.environ.items() if k != "MAKEFLAGS"}
    dry = subprocess.run(
        ["make", "-n", "setup", "TORCH_INDEX=https://example.invalid/cu126"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    assert "torch==2.14.1 torchvision==0.29.1 --index-url https://example.invalid/cu126" in dry
    (pattern,) = re.findall(r"^grep -vE '([^']+)' requirements.lock", dry, re.M)
    needs = via(LOCK.read_text())
    left_out = {name for name in needs if re.match(pattern, name)}
    # What only torch or its CUDA libraries need, among the nvidia-* and cuda-* packages.
    cuda = {name for name in needs if name.startswith(("nvidia-", "cuda-"))}
    while any(not needs[name] <= {"torch"} | cuda for name in cuda):
        cuda = {name for name in cuda if needs[name] <= {"torch"} | cuda}
    assert left_out == cuda and "nvidia-ml-py" not in left_out and len(cuda) > 10


def test_every_third_party_import_of_the_package_is_declared():
    """Each module src/ imports comes from a base dependency; Snakemake alone from [workflow] (the config's
    schema check, which the study and `datadiet estimate` use)."""
    distributions = importlib.metadata.packages_distributions()
    declared = names(BASE) | {"snakemake"}
    missing = set()
    for path in (ROOT / "src" / "datadiet").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in {m.split(".")[0] for m in modules} - set(sys.stdlib_module_names) - {"datadiet"}:
                dists = {canonicalize_name(d) for d in distributions.get(module, [module])}
                if not dists & declared:
                    missing.add(f"{path.relative_to(ROOT)}: {module} ({', '.join(sorted(dists))})")
    assert not missing


def test_the_user_tools_and_the_jobs_import_no_snakemake():
    """What runs in the jobs' conda environment (which has no Snakemake) and under `datadiet prune`."""
    modules = (
        "datadiet.tools.cli, datadiet.tools.commands, datadiet.tools.prune, datadiet.runtime.tracking, "
        "datadiet.study.figures, "
        + ", ".join(f"datadiet.study.jobs.{m}" for m in ("setup", "scores", "pruning", "dynamics", "report"))
    )
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'snakemake'))"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout == (
        "[]\n"
    )


def test_the_jobs_conda_env_holds_the_runtime_dependencies_at_the_locked_versions():
    conda, pip = jobs_env()
    assert "python=3.11" in conda and "pip" in conda
    assert all(not line.startswith(("-", ".", "/")) and "datadiet" not in line for line in pip), pip
    env = {canonicalize_name(Requirement(line).name): Requirement(line) for line in pip}
    assert not set(env) & (WORKFLOW_ONLY | TEST_TOOLS | {"datadiet"})
    assert set(env) == names(BASE), "workflow/envs/datadiet.yaml names pyproject.toml's base dependencies"
    pins = locked()
    for req in BASE:
        (spec,) = env[canonicalize_name(req.name)].specifier
        assert spec.operator == "==" and spec.version == pins[canonicalize_name(req.name)], (req, spec)
        assert req.specifier.contains(spec.version), (req, spec)


def test_the_development_conda_env_installs_the_lock_and_every_extra():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert "-r requirements.lock" in pip and "python=3.11" in env["dependencies"]
    (editable,) = [line for line in pip if line.startswith("-e ")]
    assert set(Requirement(editable.removeprefix("-e ").replace(".", "datadiet", 1)).extras) == set(EXTRAS)


def fake_python(folder, name, version):
    """An interpreter that reports `version`: --version prints it, `-c CODE` runs CODE (the real one, with
    sys.version_info set to it) and `-m venv` only says it was asked, so nothing is installed."""
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        f"import sys\nsys.version_info = ({', '.join(version.split('.'))}, 'final', 0)\n"
    )
    script = folder / name
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = --version ] && {{ echo "Python {version}"; exit 0; }}\n'
        f'[ "$1" = -m ] && [ "$2" = venv ] && {{ echo "fake {name}: venv asked for"; exit 3; }}\n'
        f'PYTHONPATH={folder} exec {sys.executable} "$@"\n'
    )
    script.chmod(0o755)
    return script


def make_setup(tmp_path, *args, path=None):
    """`make setup` in a copy of the Makefile and what it reads: never this checkout's .venv. A fake python3
    (3.11, which creates no venv) stands first on PATH, or the one in `path`, so no real install can start."""
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    if path is None:
        path = fake_python(tmp_path / "guard", "python3", "3.11.7").parent
    env = {k: v for k, v in os.environ.items() if k != "MAKEFLAGS"}
    env["PATH"] = f"{path}:{env['PATH']}"
    return subprocess.run(["make", "setup", *args], cwd=tmp_path, capture_output=True, text=True, env=env)


def test_make_setup_stops_on_an_old_python3_on_path_and_says_what_to_do(tmp_path):
    fake_python(tmp_path / "bin", "python3", "3.9.18")
    proc = make_setup(tmp_path, path=tmp_path / "bin")
    assert proc.returncode != 0
    assert "Python 3.11 or newer is needed to create .venv; PYTHON=python3 is Python 3.9.18." in proc.stderr
    assert "make setup PYTHON=python3.11" in proc.stderr and "uv python install 3.11" in proc.stderr
    assert "venv asked for" not in proc.stdout and not (tmp_path / ".venv").exists()


def test_make_setup_takes_the_interpreter_named_by_python(tmp_path):
    old = fake_python(tmp_path / "old", "python3.8", "3.8.10")
    proc = make_setup(tmp_path, f"PYTHON={old}")
    assert proc.returncode != 0 and f"PYTHON={old} is Python 3.8.10." in proc.stderr
    proc = make_setup(tmp_path, "PYTHON=no-such-python3.11")
    assert proc.returncode != 0 and "PYTHON=no-such-python3.11 is not found." in proc.stderr
    new = fake_python(tmp_path / "new", "python3.11", "3.11.7")
    proc = make_setup(tmp_path, f"PYTHON={new}")
    assert "fake python3.11: venv asked for" in proc.stdout and "is needed" not in proc.stderr


def old_interpreter():
    """A real Python older than 3.11 on this machine (pyenv's, or on PATH), or None."""
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(versions.glob("3.[0-9]*/bin/python3")) + [shutil.which(f"python3.{m}") for m in range(6, 11)]
    for candidate in filter(None, candidates):
        proc = subprocess.run([candidate, "-c", "import sys; print(sys.version_info < (3, 11))"], capture_output=True)
        if proc.returncode == 0 and proc.stdout == b"True\n":
            return candidate
    return None


def test_make_setup_stops_on_a_real_old_python(tmp_path):
    old = old_interpreter()
    if old is None:
        pytest.skip("no Python older than 3.11 here")
    version = subprocess.run([old, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    proc = make_setup(tmp_path, f"PYTHON={old}")
    assert proc.returncode != 0 and f"PYTHON={old} is {version}." in proc.stderr
    assert not (tmp_path / ".venv").exists()
