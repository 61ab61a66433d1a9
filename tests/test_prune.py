"""`datadiet prune` and `datadiet scores` on a small ImageFolder of our own: not CIFAR-10, three classes
of mixed-size PNG and JPEG images, no data from ../shared and no network."""

import fcntl
import math
import os
import pty
import random
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient
from PIL import Image

from datadiet import data, scores, selection
from datadiet.models import load_checkpoint
from datadiet.tools import cli, prune

COLORS = {"apple": (200, 40, 40), "leaf": (40, 180, 60), "sky": (50, 80, 210)}
PER_CLASS = 20
TINY = ["--width", "4", "--epochs", "2", "--threads", "1", "--batch-size", "16"]
KEEP = 0.4


def make_folder(root, colors=COLORS, per_class=PER_CLASS):
    """An ImageFolder tree: a colour per class with noise, sizes 40x28 and 24x36, every third a JPEG."""
    rng = random.Random(0)
    for name, color in colors.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            size = (40, 28) if i % 2 else (24, 36)
            image = Image.new("RGB", size, tuple(max(0, min(255, c + rng.randint(-60, 60))) for c in color))
            for _ in range(30):
                image.putpixel((rng.randrange(size[0]), rng.randrange(size[1])), (rng.randrange(256),) * 3)
            image.save(root / name / f"{name}_{i:02d}.{'jpg' if i % 3 == 0 else 'png'}")
    return root


def environment():
    # The test's own store, whatever the shell running the tests points MLflow at.
    return {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DATADIET_TRACEBACK")}


def datadiet(*args):
    return subprocess.run(
        [sys.executable, "-m", "datadiet", *map(str, args)], capture_output=True, text=True, env=environment()
    )


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    """One prune run (EL2N, keep_max, 2 seeds, a symlink tree) and `datadiet scores` on its output."""
    tmp = tmp_path_factory.mktemp("prune")
    root, out, link = make_folder(tmp / "images"), tmp / "out", tmp / "kept"
    run = datadiet("prune", "--data", root, "--out", out, "--keep", KEEP, "--seeds", 2, "--link", link, *TINY)
    assert run.returncode == 0, run.stderr
    summary = datadiet("scores", out / "scores.csv", "--top", 5)
    assert summary.returncode == 0, summary.stderr
    return {
        "root": root,
        "out": out,
        "link": link,
        "run": run,
        "summary": summary,
        "table": pd.read_csv(out / "scores.csv"),
    }


def all_images(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_every_image_is_scored_once_with_its_class(pruned):
    table, root = pruned["table"], pruned["root"]
    assert sorted(table.path) == [str(p) for p in all_images(root.resolve())]
    classes = sorted(COLORS)
    for row in table.itertuples():
        assert row.label == os.path.basename(os.path.dirname(row.path))
        assert row.label_index == classes.index(row.label)
    assert list(table.columns) == ["path", "label", "label_index", "el2n_seed0", "el2n_seed1", "mean", "rank", "kept"]
    # EL2N is the norm of a difference of two probability vectors.
    seeds = table[["el2n_seed0", "el2n_seed1"]]
    assert ((seeds >= 0) & (seeds <= math.sqrt(2))).all().all()
    assert seeds.std().min() > 0  # the model told the images apart
    assert table["mean"].to_numpy() == pytest.approx(seeds.mean(axis=1).to_numpy(), rel=1e-6)
    # rank 1 = the highest mean, N = the lowest.
    assert sorted(table["rank"]) == list(range(1, len(table) + 1))
    assert table.sort_values("rank")["mean"].is_monotonic_decreasing


def test_el2n_equals_a_recomputation_from_the_saved_model(pruned):
    table, out = pruned["table"], pruned["out"]
    images = torch.stack([data.read_image(p, 32) for p in table.path])
    mean, std = data.channel_stats(images)
    labels = torch.tensor(table.label_index.to_numpy())
    for seed in (0, 1):
        model = load_checkpoint(out / "models" / f"seed{seed}.pt", "resnet18")
        expected = scores.el2n(model, data.normalize(images, mean, std, model.memory_format), labels)
        assert table[f"el2n_seed{seed}"].to_numpy() == pytest.approx(expected.numpy(), rel=1e-5, abs=1e-6)


def test_keep_txt_lists_the_highest_ranked(pruned):
    table, out = pruned["table"], pruned["out"]
    kept = (out / "keep.txt").read_text().splitlines()
    count = selection.kept_count(len(table), KEEP)
    assert len(kept) == count == round(KEEP * len(table))
    assert kept == list(table.sort_values("rank").path[:count])  # keep_max: the hardest, hardest first
    assert sorted(table.path[table.kept == 1]) == sorted(kept)


def test_prune_json_records_the_class_histogram_and_the_tie_at_the_cut(pruned):
    table, info = pruned["table"], pd.read_json(pruned["out"] / "prune.json", typ="series")
    assert info["class_histogram"] == {name: int((table[table.label == name].kept == 1).sum()) for name in COLORS}
    assert info["tie_at_cut"] == {"size": 0, "score": None, "share": 0.0}  # EL2N: no two scores equal
    assert info["args"]["selection_seed"] == 0 and info["args"]["init"] == "flax"


def test_ranks_break_ties_as_keep_max_with_the_same_seed():
    scores = torch.tensor([1.0, 3.0, 3.0, 3.0, 3.0, 0.0, 2.0, 3.0])
    paths, labels = [f"img{i}.png" for i in range(8)], torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    ranks = set()
    for seed in range(6):
        table = prune.score_table(paths, labels, ["a", "b"], {"x_seed0": scores}, seed)
        hardest = sorted(table.sort_values("rank").index[:3])
        assert hardest == selection.keep_max(scores, 3 / 8, seed).tolist()
        ranks.add(tuple(hardest))
    assert len(ranks) > 1  # the tie at 3.0 is broken by the seed


def test_a_cut_inside_a_large_tie_is_a_warning(store, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root, out = make_folder(tmp_path / "images", per_class=8), tmp_path / "out"
    args = ["prune", "--data", str(root), "--out", str(out), "--score", "forgetting", "--seeds", "1"]
    cli.main([*args, "--keep", "0.25", "--selection-seed", "3", "--tracking-uri", store, *TINY])
    info = pd.read_json(out / "prune.json", typ="series")
    tie = info["tie_at_cut"]
    assert tie["size"] > 1 and tie["share"] == tie["size"] / 24  # 2 epochs of 2 steps: few distinct scores
    assert f"warning: the cut falls inside a tie of {tie['size']} examples with score {tie['score']}" in (
        capsys.readouterr().err
    )
    assert sum(info["class_histogram"].values()) == 6 and info["args"]["selection_seed"] == 3


def test_symlink_tree_points_at_the_kept_images(pruned):
    link, root = pruned["link"], pruned["root"]
    kept = (pruned["out"] / "keep.txt").read_text().splitlines()
    links = sorted(p for p in link.rglob("*") if p.is_symlink())
    assert len(links) == len(kept)
    for path in links:
        target = os.readlink(path)
        assert target in kept
        assert path.relative_to(link) == Path(target).relative_to(root.resolve())  # <class>/<file>
        assert path.read_bytes() == open(target, "rb").read()


def test_mlflow_holds_the_scoring_runs_and_the_selection_that_consumed_them(pruned):
    out = pruned["out"]
    info = pd.read_json(out / "prune.json", typ="series")
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("datadiet-prune")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["prune el2n@1 keep_max keep=0.4", "prune-train el2n@1 seed=0", "prune-train el2n@1 seed=1"]
    assert all(r.info.status == "FINISHED" for r in runs.values())
    parent = runs["prune el2n@1 keep_max keep=0.4"]
    seeds = [runs[f"prune-train el2n@1 seed={s}"].info.run_id for s in (0, 1)]
    assert parent.data.tags["consumed_runs"].split(",") == seeds == info["runs"]["scoring"]
    assert info["runs"]["selection"] == parent.info.run_id
    assert info["git_commit"] == parent.data.tags["git_commit"] != "unknown"
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {"scores.csv", "keep.txt", "prune.json"}
    assert "train_loss" in runs["prune-train el2n@1 seed=0"].data.metrics


def test_scores_command_summarises_per_class_and_draws_the_extremes(pruned):
    table, printed = pruned["table"], pruned["summary"].stdout
    for name in COLORS:
        assert re.search(rf"^{name}\s+{PER_CLASS}\s+{(table[table.label == name].kept == 1).sum()}\s", printed, re.M)
    assert re.search(rf"^all\s+{len(table)}\s", printed, re.M)
    assert "hardest 5:" in printed
    for path in table.sort_values("rank").path[:5]:
        assert path in printed
    with Image.open(pruned["out"] / "scores_grid.png") as figure:
        figure.verify()
        assert figure.size[0] > 600 and 200 < figure.size[1] < figure.size[0]


def test_output_off_a_terminal_has_one_line_per_step_and_no_bars(pruned):
    run = pruned["run"]
    assert "\r" not in run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"{len(pruned['table'])} images of 3 classes decoded")
    assert sum(line.startswith("epoch ") and "img/s" in line for line in lines) == 2  # an epoch line per seed
    assert lines[-1].startswith(f"kept {round(KEEP * len(pruned['table']))} of {len(pruned['table'])} images")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One MLflow store for the runs below (--tracking-uri): creating a store costs seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


def run_in_terminal(args):
    """(exit code, output) of a command under a pseudo-terminal 100 columns wide."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-m", "datadiet", *map(str, args)], environment())
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    output = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_progress_bars_on_a_terminal(store, tmp_path):
    root = make_folder(tmp_path / "images")
    code, output = run_in_terminal(
        [
            "prune",
            "--data",
            root,
            "--out",
            tmp_path / "out",
            "--tracking-uri",
            store,
            "--score",
            "aum",
            "--method",
            "window",
            "--window-left-out",
            0.5,
            "--fit",
            "center-crop",
            "--seeds",
            1,
            *TINY,
        ]
    )
    assert code == 0, output
    assert re.search(r"decoding:\s+\d+%\|", output)
    assert re.search(r"train seed=0:\s+\d+%\|.*img/s", output)
    table = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert list(table.columns[3:5]) == ["aum_seed0", "mean"]
    assert (
        table.kept.sum() == len((tmp_path / "out" / "keep.txt").read_text().splitlines()) == 30
    )  # --keep 0.5 by default


@pytest.mark.parametrize(
    "score, options, column",
    [
        ("grand", ["--score-epoch", "0", "--method", "keep_min"], "grand_seed0"),
        ("forgetting", ["--method", "random"], "forgetting_seed0"),
        ("input_norm", ["--method", "ccs"], "input_norm"),
        ("entropy", ["--score-epoch", "1", "--method", "moderate"], "entropy_seed0"),
    ],
)
def test_every_score_and_method_runs(score, options, column, store, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root, out = make_folder(tmp_path / "images", per_class=8), tmp_path / "out"
    cli.main(
        [
            "prune",
            "--data",
            str(root),
            "--out",
            str(out),
            "--score",
            score,
            "--seeds",
            "1",
            "--keep",
            "0.5",
            "--tracking-uri",
            store,
            *options,
            *TINY,
        ]
    )
    table = pd.read_csv(out / "scores.csv")
    assert list(table.columns[3:5]) == [column, "mean"] and len(table) == 24
    assert not (out / "mlflow.db").exists()
    assert table.kept.sum() == 12
    if score == "grand":  # keep_min: the lowest-scoring half
        assert set(table[table.kept == 1]["rank"]) == set(range(13, 25))
    if "moderate" in options:  # the half closest to the median score (the lower middle one, as torch's)
        distance = (table["mean"] - table["mean"].sort_values().iloc[(len(table) - 1) // 2]).abs()
        assert distance[table.kept == 1].max() <= distance[table.kept == 0].min()


def bad_folders(tmp_path):
    good = make_folder(tmp_path / "good", per_class=2)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes((good / "sky" / "sky_01.png").read_bytes())
    make_folder(tmp_path / "one", {"sky": COLORS["sky"]}, per_class=2)
    make_folder(tmp_path / "empty_class", per_class=2)
    (tmp_path / "empty_class" / "zebra").mkdir()
    (tmp_path / "empty_class" / "zebra" / "notes.txt").write_text("no images here")
    make_folder(tmp_path / "broken", per_class=2)
    (tmp_path / "broken" / "leaf" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "a_file").write_text("")
    return good


@pytest.mark.parametrize(
    "folder, options, message",
    [
        ("missing", [], "data folder {tmp}/missing does not exist"),
        ("flat", [], "Couldn't find any class folder in {tmp}/flat"),
        ("one", [], "{tmp}/one has one class folder (sky); pruning needs at least 2 classes"),
        ("empty_class", [], "Found no valid file for the classes zebra"),
        ("broken", [], "cannot decode image {tmp}/broken/leaf/broken.png"),
        ("good", ["--keep", "0"], "--keep: kept fraction must be in (0, 1], got 0.0"),
        ("good", ["--keep", "1.5"], "--keep: kept fraction must be in (0, 1], got 1.5"),
        ("good", ["--score", "loss"], "unknown score 'loss'"),
        ("good", ["--method", "hardest"], "unknown method 'hardest'"),
        ("good", ["--method", "window"], "--method window needs --window-left-out"),
        ("good", ["--score", "aum", "--score-epoch", "1"], "--score-epoch applies to grand, el2n, entropy, not to aum"),
        ("good", ["--batch-size", "128"], "6 training examples are fewer than one batch of 128"),
        ("good", ["--out", "{tmp}/a_file"], "--out {tmp}/a_file is a file, not a folder"),
    ],
)
def test_bad_input_is_one_line_naming_it(folder, options, message, tmp_path, capsys):
    bad_folders(tmp_path)
    options = [o.format(tmp=tmp_path) for o in options]
    args = [
        "prune",
        "--data",
        str(tmp_path / folder),
        "--out",
        str(tmp_path / "out"),
        "--threads",
        "1",
        "--batch-size",
        "2",
        "--epochs",
        "1",
        "--width",
        "4",
    ]
    with pytest.raises(SystemExit) as stop:
        cli.main(args + options)
    assert stop.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("datadiet prune: error: ")
    assert message.format(tmp=tmp_path) in lines[0]
    assert not (tmp_path / "out" / "scores.csv").exists()
