"""Servers the tests start on loopback: a free port to start one on, and waiting until it answers."""

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on just now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url, timeout, server=None, log=None):
    """Poll `url` (e.g. an MLflow server's /health) once a second until it answers with a success
    status; fail the test after `timeout` seconds, or as soon as the `server` process (a Popen) has
    exited. `log`, a file the server writes to, has its tail shown on failure. Stopping the server
    is left to the caller."""

    def tail():
        return f":\n{log.read_text()[-5000:]}" if log is not None and log.exists() else ""

    deadline = time.time() + timeout
    while True:
        if server is not None and server.poll() is not None:
            pytest.fail(f"the server for {url} exited with {server.returncode}{tail()}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if time.time() > deadline:
                pytest.fail(f"{url} did not answer in {timeout} s{tail()}")
            time.sleep(1)


@contextlib.contextmanager
def running_mlflow_server(store, env=None):
    """`datadiet mlflow-server` on loopback, its database, artifacts and log in `store`, with this
    environment (or `env`); yields its URI and stops it after."""
    env = {**(os.environ if env is None else env), "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "datadiet",
        "mlflow-server",
        "--store",
        store,
        "--host",
        "127.0.0.1",
        "--port",
        port,
    ]
    with open(store / "server.log", "w") as log:
        server = subprocess.Popen(list(map(str, command)), stdout=log, stderr=subprocess.STDOUT, env=env)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(f"{uri}/health", 120, server=server, log=store / "server.log")
        yield uri
    finally:
        server.terminate()
        server.wait(timeout=30)
