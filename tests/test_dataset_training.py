"""The train command on a generated non-28x28 RGB dataset: runs as typed in a fresh
process, resumes, writes a model that loads in a fresh process, refuses other data.

The first run and the loading are fresh processes (what a user types, where a user loads);
the resumed run and the refusal run in this process (the same command through `main`),
which saves two interpreter start-ups.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_minent.testing import BACKEND

OUTPUTS = ("results.json", "best.keras", "inference.keras", "best_calibrated.keras", "state.json")


def write_folders(root, size=32, per_class=(10, 3)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in zip(("train", "test"), per_class):
        for k, name in enumerate(("circle", "square", "stripe")):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(n):
                image = rng.integers(0, 80, (size, size, 3))
                image[:, :, k] += 150  # a colour per class: learnable
                Image.fromarray(image.astype(np.uint8), "RGB").save(d / f"{i}.png")


def train(*args):
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-m", "keras_minent", "train", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.skipif(BACKEND != "tensorflow", reason="one backend is enough for the CLI path")
def test_train_on_rgb_image_folders_runs_resumes_and_writes(tmp_path, capsys):
    from keras_minent.cli import main

    data, out = tmp_path / "shapes", tmp_path / "run"
    write_folders(data)
    common = ["--dataset", str(data), "--output-dir", str(out), "--batch-size", "10"]
    common += ["--verbose", "0", "--max-eval-examples", "5", "--loss", "mix_ent"]
    first = train(*common, "--epochs", "1")
    assert "SUBSET OF THE DATA: --max-eval-examples 5" in first
    capsys.readouterr()
    assert main(["train", *common, "--epochs", "2"]) == 0
    second = capsys.readouterr().out
    assert "Resuming" in second and "after epoch 1" in second
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert results["epochs"] == 2 and len(results["history"]["loss"]) == 2
    d = results["data"]
    assert d["kind"] == "image_folders" and d["input_shape"] == [32, 32, 3]
    assert d["num_classes"] == 3 and d["label_mapping"] == {"circle": 0, "square": 1, "stripe": 2}
    assert d["counts"] == {"train": 30, "test": 9}
    assert d["num_examples"] == {"fit": 28, "val": 2, "test": 5}  # round(30 / 12) = 2
    assert len(d["normalization"]["mean"]) == 3
    assert results["config"]["max_eval_examples"] == 5
    assert "SUBSET OF THE DATA" in results["note"]
    # the saved model carries the data's shape, classes and normalisation
    code = (
        "import keras, keras_minent\n"
        f"m = keras.saving.load_model({str(out / 'inference.keras')!r})\n"
        "print(m.input_shape, m.output_shape, m.get_layer('normalize').get_config()['mean'])\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    ).stdout
    assert "(None, 32, 32, 3) (None, 3)" in shown and str(d["normalization"]["mean"][0]) in shown
    # other data in the same directory is refused (the fingerprint is checked)
    (data / "test" / "circle" / "0.png").unlink()
    assert main(["train", *common, "--epochs", "3"]) == 2
    assert "trained on other data" in capsys.readouterr().err
