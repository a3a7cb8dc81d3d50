"""KerasTuner search of the regularizer weight: trials, precision, resume, CLI."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from helpers import SMALL, SMALL_CLI, tiny_model

from keras_minent.testing import requires_tf

keras_tuner = pytest.importorskip("keras_tuner")
from keras_minent import tuning  # noqa: E402

DTYPES_SEEN: list[str] = []
BUILDS: list[int] = []


def counted_model():
    """`tiny_model` for 8x8 inputs and 5 classes; counts the builds and their dtypes."""
    BUILDS.append(1)
    model = tiny_model((8, 8, 1), 5)
    DTYPES_SEEN.append(model.layers[0].compute_dtype)
    return model


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype(int) + 2 * (x[:, 0, 0, 0] > 0)
    return x, y


def run_search(directory, trials, precision="float32", losses=("ce", "min_ent", "mix_ent")):
    hm = tuning.RegularizationHyperModel(counted_model, losses=losses, precision=precision)
    tuner = tuning.make_tuner("random", hm, str(directory), max_trials=trials, epochs=1, seed=1)
    x, y = data()
    vx, vy = data(32, 1)
    tuner.search(x, y, validation_data=(vx, vy), epochs=1, batch_size=16, verbose=0)
    return tuner


def test_two_trial_search_completes_in_mixed_precision(tmp_path):
    DTYPES_SEEN.clear()
    tuner = run_search(tmp_path, 2, precision="mixed_bfloat16")
    rows = tuning.trial_table(tuner)
    assert len(rows) == 2 and all(r["status"] == "COMPLETED" for r in rows)
    assert all(r["val_accuracy"] is not None for r in rows)
    assert DTYPES_SEEN and set(DTYPES_SEEN) == {"bfloat16"}  # every trial, not only the first
    best = tuner.get_best_hyperparameters(1)[0].values
    assert best["loss"] in ("ce", "min_ent", "mix_ent")
    config = tuning.TuneConfig(output_dir=str(tmp_path))
    result = tuning.report(tuner, config)
    assert result["best"]["loss"] == best["loss"]
    assert json.loads((tmp_path / "best_hyperparameters.json").read_text())["loss"] == best["loss"]
    assert (tmp_path / "objective.png").read_bytes()[:4] == b"\x89PNG"


def test_search_resumes_without_repeating_trials(tmp_path):
    BUILDS.clear()
    run_search(tmp_path, 1)
    first = len(BUILDS)
    tuner = run_search(tmp_path, 2)  # same directory: continues
    rows = tuning.trial_table(tuner)
    assert len(rows) == 2 and all(r["status"] == "COMPLETED" for r in rows)
    # keras-tuner builds once to check the hypermodel, then once per new trial.
    assert len(BUILDS) - first <= 2


def test_weight_is_log_uniform_and_conditional():
    hm = tuning.RegularizationHyperModel(
        counted_model, losses=("ce", "min_ent"), weight_range=(1e-4, 1e-1)
    )
    hp = keras_tuner.HyperParameters()
    loss = hm.build_loss(hp)
    assert hp.values["loss"] == "ce" and isinstance(loss, keras.losses.Loss)
    space = {p.name: p for p in hp.space}
    assert space["reg_weight"].sampling == "log"
    assert (space["reg_weight"].min_value, space["reg_weight"].max_value) == (1e-4, 1e-1)
    with pytest.raises(ValueError, match="weight_range"):
        tuning.RegularizationHyperModel(weight_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="losses"):
        tuning.RegularizationHyperModel(losses=("focal",))


def test_failed_trials_are_reported(tmp_path):
    calls = []

    def fails_in_trials():
        calls.append(1)
        if len(calls) > 1:  # the space check passes; every trial then fails
            raise RuntimeError("boom")
        return counted_model()

    hm = tuning.RegularizationHyperModel(fails_in_trials)
    tuner = tuning.make_tuner("random", hm, str(tmp_path), max_trials=2)
    x, y = data()
    tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0)  # returns quietly
    rows = tuning.trial_table(tuner)
    assert rows and all(r["status"] == "FAILED" for r in rows)
    with pytest.raises(RuntimeError, match="trial\\(s\\) failed"):
        tuning.report(tuner, tuning.TuneConfig(output_dir=str(tmp_path)))


@requires_tf
def test_tune_command_on_synthetic_data(tmp_path):
    from keras_minent.cli import main

    out = tmp_path / "tune"
    argv = ["tune", *SMALL_CLI, "--trials", "2", "--epochs-per-trial", "1", "--losses", "min_ent"]
    code = main([*argv, "--output-dir", str(out)])
    assert code == 0
    rows = json.loads((out / "trials.json").read_text())
    assert len(rows) == 2 and all(r["status"] == "COMPLETED" for r in rows)


def test_search_refuses_multiworker_and_says_what_to_use():
    with pytest.raises(ValueError, match="KERASTUNER_TUNER_ID"):
        tuning.TuneConfig(distribute="multiworker")


@requires_tf
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute")
def test_search_builds_every_trial_under_the_strategy(tmp_path):
    """`distribute="gpus"`: MirroredStrategy (here over the one CPU) in every build."""
    import tensorflow as tf

    import keras_minent

    strategies = []

    def builder():
        strategies.append(type(tf.distribute.get_strategy()).__name__)
        return keras_minent.vgg5(synchronized_bn=True)

    config = tuning.TuneConfig(
        **SMALL,
        trials=2,
        epochs=1,
        losses=("min_ent",),
        output_dir=str(tmp_path / "tune"),
        distribute="gpus",
    )
    result = tuning.search(config, model_builder=builder)
    assert len(result["trials"]) == 2 and not result["failed"]
    # keras-tuner first builds once outside any strategy to read the search space.
    assert strategies[-2:] == ["MirroredStrategy"] * 2 and len(strategies) == 3
