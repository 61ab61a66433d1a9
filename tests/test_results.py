"""The files jobs hand to each other: written whole or not at all."""

import os

import pytest

from datadiet.runtime import files


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "result.json"
    files.write_json({"run_id": "old"}, path)

    def torn(tmp):
        tmp.write_text('{"run_id": "ne')
        raise KeyboardInterrupt("stopped by signal 15")

    with pytest.raises(KeyboardInterrupt):
        files.atomic(path, torn)
    assert files.read_json(path) == {"run_id": "old"}
    assert os.listdir(tmp_path) == ["result.json"]


def test_publish_links_the_file_and_leaves_the_source(tmp_path):
    (tmp_path / "work").mkdir()
    source = tmp_path / "work" / "ckpt_e2.pt"
    source.write_bytes(b"weights")
    files.publish(source, tmp_path / "ckpt_e2.pt")
    assert source.exists() and os.path.samefile(source, tmp_path / "ckpt_e2.pt")


def test_publish_copies_where_the_file_system_has_no_hard_links(tmp_path, monkeypatch):
    source = tmp_path / "state_e0.pt"
    source.write_bytes(b"state")

    def no_links(source, target):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "link", no_links)
    files.publish(source, tmp_path / "copy.pt")
    assert (tmp_path / "copy.pt").read_bytes() == b"state" and not os.path.samefile(source, tmp_path / "copy.pt")


def test_whole_number_scores_read_back_as_floats_and_average_over_seeds(tmp_path):
    """A trained run forgets nothing it never learned: its forgetting counts are all whole (no inf),
    and the mean over seeds must still be taken (it once failed on int64 columns)."""
    from argparse import Namespace

    import torch

    from datadiet.study.jobs import setup

    paths = [tmp_path / f"seed{s}.csv" for s in (0, 1)]
    for seed, (path, counts) in enumerate(zip(paths, ([0, 2, 1], [1, 2, 0]))):
        made_by = {"score": "forgetting", "seed": seed, "runs": [f"run{seed}"]}
        files.write_scores(path, torch.arange(3), torch.tensor([0, 1, 2]), {"score": torch.tensor(counts)}, made_by)
    assert files.read_scores(paths[0])["score"].dtype == "float64"
    setup.aggregate(Namespace(inputs=[str(p) for p in paths], out=str(tmp_path / "mean.csv")))
    mean = files.read_scores(tmp_path / "mean.csv")
    assert mean["mean"].tolist() == [0.5, 2.0, 0.5] and mean["seed1"].tolist() == [1.0, 2.0, 0.0]
