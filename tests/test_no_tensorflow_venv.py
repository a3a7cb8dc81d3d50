"""A fresh venv with `keras-minent[jax,torch]` and without TensorFlow.

`tests/no_tensorflow_venv.sh` checks, as a user would: the NumPy data path feeds
`fit`; `python -m keras_minent train --synthetic` (tiny) runs on the JAX and the
PyTorch backend; a run stopped after epoch 1 and continued has the history of an
uninterrupted run, on both. About 3-4 minutes on 2 CPU cores (install ~40 s).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "no_tensorflow_venv.sh")


@pytest.mark.slow
def test_main_job_in_a_venv_without_tensorflow(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHON"] = getattr(sys, "_base_executable", sys.executable)
    proc = subprocess.run(
        ["bash", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=900, env=env
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    out = proc.stdout
    assert "no-tensorflow data path OK" in out and "no-tensorflow venv OK" in out, out
    for backend in ("jax", "torch"):
        assert f"train on {backend}: resumed = uninterrupted" in out, out
