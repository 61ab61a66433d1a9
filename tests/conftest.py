import pytest

from studies import run_snakemake, study_overrides


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    """The tiny study, run locally once: (its results folder, its overrides file)."""
    tmp = tmp_path_factory.mktemp("study")
    overrides = study_overrides(tmp, tmp / "results")
    run_snakemake(overrides)
    return tmp / "results" / "tiny", overrides
