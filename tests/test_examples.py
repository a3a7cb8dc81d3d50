"""Every example in `examples/` runs, in a tiny configuration, as a user would run it."""

from __future__ import annotations

import pathlib

import pytest
from helpers import SMALL_DATA_CLI

from keras_minent.testing import requires_tf, run_script

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
TINY_DATA = [*SMALL_DATA_CLI, "--epochs", "1"]

#: The tiny configuration of each example (its output directory is added).
FLAGS = {
    "losses_quickstart.py": ["--epochs", "1"],
    "train_emnist_letters.py": TINY_DATA,
    "tune_regularization.py": [*TINY_DATA, "--trials", "2", "--tuner", "random"],
    "mixed_precision_gpu.py": TINY_DATA,
}
#: What each example prints when it worked.
EXPECT = {
    "losses_quickstart.py": "entropy of predictions",
    "train_emnist_letters.py": "test accuracy at epoch 1",
    "tune_regularization.py": "best:",
    "mixed_precision_gpu.py": "global policy restored: float32",
}


def test_every_example_has_a_tiny_configuration():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(FLAGS)


@pytest.mark.slow
@requires_tf
@pytest.mark.parametrize("name", sorted(FLAGS))
def test_example_runs(name, tmp_path, monkeypatch):
    if name == "tune_regularization.py":
        pytest.importorskip("keras_tuner")
    monkeypatch.setenv("KERAS_MINENT_DATA", str(tmp_path / "data"))  # never ~/
    out = run_script(EXAMPLES / name, *FLAGS[name], "--output-dir", str(tmp_path), timeout=600)
    assert EXPECT[name] in out, out[-2000:]
