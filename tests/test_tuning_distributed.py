"""keras-tuner's chief/worker mode with our hypermodel, on 127.0.0.1 (slow)."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("keras_tuner")
pytestmark = pytest.mark.slow

SCRIPT = pathlib.Path(__file__).parent / "workers" / "tuning_search.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(role, port, directory, extra_env=None):
    env = {
        **os.environ,
        "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "KERASTUNER_TUNER_ID": role,
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": str(port),
        "KERAS_MINENT_WORKER_TIMEOUT": "8",
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(directory)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_cluster(tmp_path):
    """Runs a chief and two workers, worker 1 dying at the end of its first epoch; checks
    that the search completed its 4 trials."""
    port = free_port()
    directory = tmp_path / "search"
    chief = start("chief", port, directory)
    deadline = time.time() + 120
    while time.time() < deadline:  # the oracle server is up
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.5)
    workers = [
        start("worker0", port, directory),
        start("worker1", port, directory, {"CRASH_AFTER_EPOCH": "0"}),
    ]
    try:
        out, _ = chief.communicate(timeout=400)
        codes = [w.wait(timeout=120) for w in workers]
    finally:
        for p in (chief, *workers):
            if p.poll() is None:
                p.kill()
    assert chief.returncode == 0, out[-3000:]
    line = [x for x in out.splitlines() if x.startswith("TRIALS")][-1]
    assert line.count("COMPLETED") == 4, line
    return out, codes


def test_two_workers_finish_the_search_when_one_dies(tmp_path):
    """A chief and two workers share the four trials; worker 1 dies in its first trial:
    the trial is re-queued, all four complete (checked in run_cluster), and the chief and
    the surviving worker exit normally."""
    out, codes = run_cluster(tmp_path)
    assert codes == [0, 9]  # worker1 died in its first trial
    assert "re-queued" in out
