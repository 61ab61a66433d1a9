"""The test cluster leaves the machine as it found it."""

import subprocess

import pytest

import slurm_cluster


def test_stopping_the_test_cluster_removes_its_slurm_conf_and_stops_the_daemons_it_started(tmp_path):
    reason = slurm_cluster.why_not()
    if reason:
        pytest.skip(f"no test Slurm cluster on this machine: {reason}")
    munge_was_running = slurm_cluster.munge_answers()
    cluster = slurm_cluster.Cluster(tmp_path).start()
    daemons = list(cluster.processes)
    assert "datadiet tests" in slurm_cluster.CONF.read_text()
    cluster.stop()
    assert not slurm_cluster.CONF.exists()
    assert all(daemon.poll() is not None for daemon in daemons)
    assert slurm_cluster.munge_answers() == munge_was_running  # munged too, where the test started it
    # Without a slurm.conf the plugin's probe fails at once instead of waiting for a dead controller.
    probe = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=5)
    assert probe.returncode != 0
