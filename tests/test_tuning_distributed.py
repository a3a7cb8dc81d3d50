"""keras-tuner's chief/worker mode with our hypermodel, on 127.0.0.1 (slow)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("keras_tuner")
pytestmark = pytest.mark.slow

SCRIPT = r'''
import os, sys, time, numpy as np, keras
from keras_minent import tuning

class Crash(keras.callbacks.Callback):
    """Kills this worker at the end of its first epoch (a machine dying mid-trial)."""
    def on_epoch_end(self, epoch, logs=None):
        if os.environ.get("CRASH_AFTER_EPOCH") == str(epoch):
            os._exit(9)
        time.sleep(0.5)

def model():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(3)])

hm = tuning.RegularizationHyperModel(model, losses=("min_ent", "mix_ent"))
tuner = tuning.make_tuner("random", hm, sys.argv[1], max_trials=4, epochs=2, seed=3)
rng = np.random.default_rng(0)
x = rng.normal(size=(96, 6)).astype("float32")
y = np.argmax(x[:, :3], axis=-1)
tuner.search(x, y, validation_data=(x, y), epochs=2, batch_size=32, verbose=0,
             callbacks=[Crash()])
if os.environ["KERASTUNER_TUNER_ID"] == "chief":
    rows = tuning.trial_table(tuner)
    print("TRIALS", [(r["trial"], r["status"]) for r in rows])
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(role, port, directory, script, extra_env=None):
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
        [sys.executable, str(script), str(directory)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_cluster(tmp_path, crash_worker: bool):
    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    port = free_port()
    directory = tmp_path / "search"
    chief = start("chief", port, directory, script)
    deadline = time.time() + 120
    while time.time() < deadline:  # the oracle server is up
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.5)
    workers = [
        start("worker0", port, directory, script),
        start(
            "worker1",
            port,
            directory,
            script,
            {"CRASH_AFTER_EPOCH": "0"} if crash_worker else None,
        ),
    ]
    try:
        out, _ = chief.communicate(timeout=400)
        codes = [w.wait(timeout=120) for w in workers]
    finally:
        for p in (chief, *workers):
            if p.poll() is None:
                p.kill()
    assert chief.returncode == 0, out[-3000:]
    trials = json.loads((directory / "search" / "oracle.json").read_text())
    return out, codes, trials


def test_chief_and_two_workers_finish(tmp_path):
    out, codes, _ = run_cluster(tmp_path, crash_worker=False)
    assert codes == [0, 0]
    line = [x for x in out.splitlines() if x.startswith("TRIALS")][-1]
    assert line.count("COMPLETED") == 4, line


def test_search_finishes_when_a_worker_dies(tmp_path):
    out, codes, _ = run_cluster(tmp_path, crash_worker=True)
    assert codes[0] == 0 and codes[1] == 9  # worker1 died in its first trial
    line = [x for x in out.splitlines() if x.startswith("TRIALS")][-1]
    assert line.count("COMPLETED") == 4, line
    assert "re-queued" in out
