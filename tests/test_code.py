"""The code's own hygiene: the linter and formatter agree with it, functions stay short, commands
that track nothing never import MLflow, and the experiment modules Snakemake reads import no plotting."""

import ast
import subprocess
import sys

import pytest

from paths import ROOT

LONGEST_FUNCTION = 60  # lines


def test_ruff_finds_nothing_to_fix_or_reformat():
    for command in (["check"], ["format", "--check"]):
        proc = subprocess.run([sys.executable, "-m", "ruff", *command, "."], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_function_of_the_package_is_longer_than_a_screen():
    long = []
    for path in sorted((ROOT / "src" / "datadiet").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST_FUNCTION:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


@pytest.mark.parametrize(
    "module",
    [
        "datadiet.cli",
        "datadiet.study.jobs.setup",
        "datadiet.study.config",
        "datadiet.study.experiments.pruning",
        "datadiet.report",
        "datadiet.gpu_check",  # a bare GPU machine has no MLflow
    ],
)
def test_what_tracks_nothing_imports_no_mlflow(module):
    code = f"import sys, {module}; print('mlflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_the_experiment_modules_import_no_plotting_or_scipy():
    # Snakemake imports them for their targets on every run: matplotlib, seaborn and scipy cost ~1.2 s.
    experiments = ", ".join(
        f"datadiet.study.experiments.{m}" for m in ("scores", "pruning", "noise", "window", "transfer", "ntk", "lmc")
    )
    code = (
        f"import sys, {experiments}; print(sorted(m for m in ('matplotlib', 'seaborn', 'scipy') if m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_make_test_fast_collects_the_unit_tier_and_leaves_out_every_whole_system_module():
    """The tiers of conftest.WHOLE_SYSTEM, as `make test-fast` selects them (collection only)."""
    from conftest import WHOLE_SYSTEM

    dry = subprocess.run(["make", "--no-print-directory", "-n", "test-fast"], cwd=ROOT, capture_output=True, text=True)
    assert '-m pytest -m "not system"' in dry.stdout, dry.stdout
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "not system", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    modules = {
        line.split("::")[0].removeprefix("tests/").removesuffix(".py")
        for line in collected.splitlines()
        if "::" in line
    }
    on_disk = {path.stem for path in (ROOT / "tests").glob("test_*.py")}
    assert modules == on_disk - WHOLE_SYSTEM and WHOLE_SYSTEM <= on_disk, collected[-2000:]
