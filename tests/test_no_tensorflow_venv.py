"""A fresh venv without TensorFlow: the data path works there (JAX backend)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "no_tensorflow_venv.sh")


@pytest.mark.slow
def test_data_path_in_a_venv_without_tensorflow(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHON"] = getattr(sys, "_base_executable", sys.executable)
    proc = subprocess.run(
        ["bash", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=600, env=env
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "no-tensorflow venv OK" in proc.stdout
