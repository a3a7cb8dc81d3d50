"""A search's trial is a short run of the `train` recipe: the command it prints repeats it."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
from helpers import SMALL

pytest.importorskip("keras_tuner")
from keras_minent import tuning  # noqa: E402
from keras_minent.cli import main  # noqa: E402
from keras_minent.tuning import hypermodel as hypermodel_module  # noqa: E402


def test_a_one_trial_search_and_its_train_command_give_the_same_history(tmp_path, monkeypatch):
    histories = []  # the trial's fit history (keras-tuner keeps only the best epoch's)
    real_fit = hypermodel_module.fit

    def recording_fit(*args, **kwargs):
        history = real_fit(*args, **kwargs)
        histories.append(history.history)
        return history

    monkeypatch.setattr(hypermodel_module, "fit", recording_fit)
    search_dir = tmp_path / "tune"
    config = tuning.TuneConfig(
        **SMALL,
        learning_rate=0.004,
        trials=1,
        epochs=2,
        losses=("min_ent",),
        seed=7,
        output_dir=str(search_dir),
    )
    result = tuning.search(config)
    (row,) = result["trials"]
    words = shlex.split(result["command"])
    assert words[:4] == ["python", "-m", "keras_minent", "train"]
    print(result["command"])
    options = {w: v for w, v in zip(words, [*words[1:], ""]) if w.startswith("--")}
    # Every option that differs from train's defaults, the trial's seed among them.
    assert options["--seed"] == str(tuning.trial_seed(7, row["trial"]))
    assert options["--batch-size"] == "52" and float(options["--learning-rate"]) == 0.004
    assert options["--loss"] == "min_ent"
    assert float(options["--reg-weight"]) == row["reg_weight"]  # all its digits
    assert "--synthetic" in words and options["--synthetic-size"] == str(SMALL["synthetic_size"])

    run_dir = tmp_path / "train"
    assert main([*words[3:], "--epochs", "2", "--verbose", "0", "--output-dir", str(run_dir)]) == 0
    results = json.loads((run_dir / "results.json").read_text())
    stored = json.loads((search_dir / "search_config.json").read_text())
    assert results["data"]["fingerprint"] == stored["data_fingerprint"]  # the same images
    (trial_history,) = histories
    for metric in ("val_accuracy", "val_loss", "learning_rate"):
        print(metric, "trial:", trial_history[metric], "train:", results["history"][metric])
        assert len(trial_history[metric]) == 2
        np.testing.assert_allclose(trial_history[metric], results["history"][metric], rtol=1e-6)
