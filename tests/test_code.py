"""The code's own hygiene: the linter and formatter agree with it, functions stay short, the package's
modules import each other without a loop and the science core imports nothing of the study, commands
that track nothing never import MLflow, and the experiment modules Snakemake reads import no plotting."""

import ast
import re
import subprocess
import sys

import pytest

from paths import ROOT

LONGEST_FUNCTION = 60  # lines
LONGEST_MODULE = 400  # lines
PACKAGE = ROOT / "src" / "datadiet"
# The science core, its statistics and the stand-alone GPU check: none of them may reach the study, the
# tracking or the user's other tools.
WITHOUT_THE_STUDY = ("data", "models", "train", "scores", "selection", "noise", "dynamics", "stats", "verdicts")
ABOVE_THE_CORE = ("datadiet.study", "datadiet.runtime.tracking", "datadiet.tools.cli", "datadiet.tools.commands")


def module_name(path):
    parts = ("datadiet", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(node, package):
    """The modules an import statement names: `from . import x` names the package and package.x."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def import_graph():
    """{module: the package's modules it imports}, imports inside functions counted too."""
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        names = {
            target
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for target in imported(node, package)
        }
        graph[name] = (names & paths.keys()) - {name}
    return graph


def cycles(graph):
    """Every module that can reach itself through `graph`, with the loop it goes round."""
    loops = {}
    for start in graph:
        stack, seen = [(start, (start,))], set()
        while stack and start not in loops:
            module, path = stack.pop()
            for target in graph[module]:
                if target == start:
                    loops[start] = " -> ".join((*path, start))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, (*path, target)))
    return loops


def reachable(graph, module):
    seen, stack = set(), [module]
    while stack:
        for target in graph[stack.pop()] - seen:
            seen.add(target)
            stack.append(target)
    return seen


def test_ruff_finds_nothing_to_fix_or_reformat():
    for command in (["check"], ["format", "--check"]):
        proc = subprocess.run([sys.executable, "-m", "ruff", *command, "."], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_cycle_finder_finds_a_loop_through_an_import_inside_a_function(tmp_path):
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {
        "a": "a -> b -> c -> a",
        "b": "b -> c -> a -> b",
        "c": "c -> a -> b -> c",
    }
    code = "def late():\n    from . import b\n"
    assert imported(ast.parse(code).body[0].body[0], "datadiet.study") == ["datadiet.study", "datadiet.study.b"]


def test_no_module_of_the_package_imports_itself_round_a_loop():
    assert cycles(import_graph()) == {}


@pytest.mark.parametrize("module", [*WITHOUT_THE_STUDY, "tools.gpu_check"])
def test_the_science_core_its_statistics_and_the_gpu_check_import_nothing_of_the_study(module):
    above = [m for m in reachable(import_graph(), f"datadiet.{module}") if m.startswith(ABOVE_THE_CORE)]
    assert sorted(above) == []


def test_no_module_of_the_package_is_longer_than_one_idea_needs():
    long = [
        f"{p.relative_to(ROOT)} ({n} lines)"
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > LONGEST_MODULE
    ]
    assert long == []


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
        "datadiet.tools.cli",
        "datadiet.study.jobs.setup",
        "datadiet.study.config",
        "datadiet.study.experiments.pruning",
        "datadiet.study.report",
        "datadiet.tools.gpu_check",  # a bare GPU machine has no MLflow
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


def heading_anchors(page):
    """The anchors GitHub gives a Markdown page's headings."""
    headings = (line.lstrip("#").strip().lower() for line in page.read_text().splitlines() if line.startswith("#"))
    return {re.sub(r"[^\w\- ]", "", heading).replace(" ", "-") for heading in headings}


def test_the_readme_is_a_front_page_and_every_link_of_it_and_its_docs_resolves():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200
    broken = []
    for page in pages:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([\w\-]+))?\)", page.read_text()):
            if target.startswith("http"):
                continue
            path = (page.parent / target).resolve() if target else page
            if not path.exists() or (anchor and path.suffix == ".md" and anchor not in heading_anchors(path)):
                broken.append(f"{page.name}: ({target}#{anchor})")
    assert broken == []
