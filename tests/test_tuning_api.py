"""The tuning API leaves the user's global state alone, and its plot says what it shows."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import SMALL, tiny_model

keras_tuner = pytest.importorskip("keras_tuner")
from keras_minent import tuning  # noqa: E402


def test_a_search_restores_the_users_dtype_policy(tmp_path):
    keras.config.set_dtype_policy("mixed_float16")  # the user's (conftest resets it)
    seen = []

    def builder():
        model = tiny_model((8, 8, 1), 4)
        seen.append(model.layers[0].dtype_policy.name)
        return model

    hm = tuning.RegularizationHyperModel(builder, losses=("min_ent",), precision="mixed_bfloat16")
    tuner = keras_tuner.RandomSearch(
        hm, objective="val_accuracy", max_trials=2, directory=str(tmp_path), seed=0
    )
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 8, 8, 1)).astype("float32"), rng.integers(0, 4, 32)
    tuner.search(x, y, validation_data=(x, y), epochs=1, batch_size=16, verbose=0)
    assert set(seen) == {"mixed_bfloat16"}  # every trial trained in the search's precision
    assert keras.config.dtype_policy().name == "mixed_float16"
    hm.build(keras_tuner.HyperParameters())
    assert keras.config.dtype_policy().name == "mixed_float16"
    rows = tuning.trial_table(tuner)
    config = tuning.TuneConfig(output_dir=str(tmp_path), synthetic=True)
    tuning.report(tuner, config)
    assert (tmp_path / "objective.png").read_bytes()[:4] == b"\x89PNG"
    assert len(rows) == 2


def test_objective_plot_carries_the_note(tmp_path, monkeypatch):
    titles = []
    from matplotlib.axes import Axes

    original = Axes.set_title
    monkeypatch.setattr(
        Axes, "set_title", lambda self, text, *a, **k: titles.append(text) or original(self, text)
    )
    rows = [
        {"trial": "0", "loss": "ce", "reg_weight": None, "val_accuracy": 0.5},
        {"trial": "1", "loss": "min_ent", "reg_weight": 0.01, "val_accuracy": 0.6},
        {"trial": "2", "loss": "min_ent", "reg_weight": 0.1, "val_accuracy": 0.55},
    ]
    tuning.plot_objective(rows, "val_accuracy", str(tmp_path / "o.png"), note="SYNTHETIC DATA")
    assert "SYNTHETIC DATA" in titles[-1]


def test_search_restores_the_users_dtype_policy(tmp_path):
    keras.config.set_dtype_policy("mixed_float16")  # the user's (conftest resets it)
    config = tuning.TuneConfig(
        **SMALL,
        trials=1,
        epochs=1,
        losses=("min_ent",),
        precision="mixed_bfloat16",
        output_dir=str(tmp_path),
    )
    result = tuning.search(config, model_builder=tiny_model)
    assert len(result["trials"]) == 1 and not result["failed"]
    assert keras.config.dtype_policy().name == "mixed_float16"


def test_objective_plot_keeps_accuracy_in_its_range_and_weights_in_plain_numbers(
    tmp_path, monkeypatch
):
    from keras_minent import _plotting

    figures = []
    monkeypatch.setattr(_plotting, "save", lambda fig, path: figures.append(fig))
    rows = [
        {"trial": "0", "loss": "ce", "reg_weight": None, "val_accuracy": 0.0},
        {"trial": "1", "loss": "min_ent", "reg_weight": 0.005, "val_accuracy": 0.0},
        {"trial": "2", "loss": "min_ent", "reg_weight": 0.7, "val_accuracy": 0.0},
    ]
    tuning.plot_objective(rows, "val_accuracy", str(tmp_path / "o.png"))
    (ax,) = figures[0].axes
    low, high = ax.get_ylim()
    assert 0.0 <= low < high <= 1.0  # no negative accuracy on the axis
    assert ax.xaxis.get_major_formatter()(0.01, 0) == "0.01"
