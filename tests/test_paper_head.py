"""`--head paper`: the author's 62 outputs, letters trained as outputs 1..26."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest
from helpers import SMALL_284_CLI

from keras_minent.cli import main
from keras_minent.datasets import idx
from keras_minent.training import ConfigError, TrainConfig
from keras_minent.training.run import claim_output_dir, head_labels


def test_paper_head_trains_62_outputs_on_labels_plus_one(tmp_path):
    out = tmp_path / "run"
    argv = [
        "train",
        *SMALL_284_CLI,
        "--epochs",
        "1",
        "--max-train-examples",
        "52",
        "--no-augment",
        "--xla",
        "off",
    ]
    assert main([*argv, "--head", "paper", "--output-dir", str(out)]) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["config"]["head"] == "paper"
    assert r["head"]["name"] == "paper" and r["head"]["outputs"] == 62
    best = keras.saving.load_model(out / "best.keras")
    assert best.output_shape == (None, 62)
    assert keras.saving.load_model(out / "inference.keras").output_shape == (None, 62)
    # Scored as the author scored: argmax over the 62 outputs against the label plus one.
    x, y = idx.read_directory(out / "synthetic_raw")["test"]
    assert len(y) == r["num_examples"]["test"] == 47
    top = best.predict(x, verbose=0).argmax(-1)
    assert r["test_accuracy"] == pytest.approx(np.mean(top == y + 1), abs=1e-6)
    assert r["test_mean_entropy"] <= np.log(62) + 1e-6
    # The same directory with the 26-way head is another run: refused.
    assert main([*argv, "--output-dir", str(out)]) == 2
    # evaluate reads the 62 outputs both ways; the author's readout is the run's accuracy.
    evaluated = tmp_path / "evaluated"
    argv = ["evaluate", "--checkpoint", str(out / "best.keras"), "--output-dir", str(evaluated)]
    assert main([*argv, "--idx-dir", str(out / "synthetic_raw")]) == 0
    e = json.loads((evaluated / "results.json").read_text())
    assert e["outputs"] == 62 and e["test_accuracy_62way"] == pytest.approx(r["test_accuracy"])
    letters = best.predict(x, verbose=0)[:, 1:27].argmax(-1)
    assert e["test_accuracy"] == pytest.approx(np.mean(letters == y))
    assert e["outside_letters"] == int(np.sum((top < 1) | (top > 26)))


def test_a_run_written_before_the_head_option_resumes_as_letters(tmp_path, capsys):
    config = TrainConfig(output_dir=str(tmp_path), synthetic=True)
    stored = dataclasses.asdict(config)
    del stored["head"]
    (tmp_path / "config.json").write_text(json.dumps(stored))
    claim_output_dir(config)  # the same run: the stored run had the 26-way head
    assert "replacing" not in capsys.readouterr().out
    # No epoch was committed, so another head replaces the configuration, naming the change.
    claim_output_dir(dataclasses.replace(config, head="paper"))
    assert "head: 'letters' -> 'paper'" in capsys.readouterr().out


def test_head_labels_shift_only_with_the_paper_head():
    data = {
        "fit": (np.zeros((3, 2)), np.array([0, 7, 25])),
        "test": (np.zeros((1, 2)), np.array([4])),
    }
    shifted = head_labels(TrainConfig(head="paper"), data)
    assert shifted["fit"][1].tolist() == [1, 8, 26] and shifted["test"][1].tolist() == [5]
    assert head_labels(TrainConfig(), data) is data


def test_paper_head_is_emnist_letters_only(tmp_path):
    with pytest.raises(ConfigError, match=r"--head paper is EMNIST-Letters' 62-output head"):
        TrainConfig(head="paper", dataset=str(tmp_path / "data.npz"))
    assert TrainConfig().head == "letters"
