"""The search means what it says: bad options are refused, the same seed gives the same
table, every trial is seeded, a resumed search is the same search, and damaged
keras-tuner files are named."""

from __future__ import annotations

import json
import os
import shutil

import keras
import pytest
from helpers import SMALL, tiny_model

pytest.importorskip("keras_tuner")
from keras_minent import tuning  # noqa: E402
from keras_minent.cli import main  # noqa: E402


def tiny_vgg():
    """A tiny model with dropout (so dropout seeding matters), on EMNIST's images."""
    return tiny_model(dropout=0.5)


def _config(out, **kw):
    args = dict(SMALL, trials=2, epochs=1, losses=("min_ent",), output_dir=str(out))
    return tuning.TuneConfig(**{**args, **kw})


def _search(out, **kw):
    return tuning.search(_config(out, **kw), model_builder=tiny_vgg)


@pytest.fixture(scope="module")
def one_trial_search(tmp_path_factory):
    """A finished one-trial search, run once for the module; tests change copies of it."""
    out = tmp_path_factory.mktemp("search") / "s"
    _search(out, trials=1)
    return out


@pytest.fixture
def one_trial_copy(one_trial_search, tmp_path):
    """A full copy (keras-tuner writes its files in place: no hard links)."""
    out = tmp_path / "s"
    shutil.copytree(one_trial_search, out)
    return out


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--trials", "0", "--trials must be >= 1"),
        ("--epochs-per-trial", "0", "--epochs-per-trial must be >= 1"),
        ("--batch-size", "0", "--batch-size must be >= 1"),
        ("--learning-rate", "-1", "--learning-rate must be a finite number > 0"),
        ("--seed", "-3", "--seed must be >= 0"),
    ],
)
def test_invalid_search_options_are_refused(tmp_path, capsys, option, value, message):
    assert main(["tune", "--output-dir", str(tmp_path), option, value]) == 2
    assert message in capsys.readouterr().err


def test_same_search_twice_gives_the_same_table_with_seed_0(tmp_path):
    # Validation cross entropy: a continuous score, so unseeded weights would show.
    a = _search(tmp_path / "a", seed=0, objective="val_cross_entropy")
    b = _search(tmp_path / "b", seed=0, objective="val_cross_entropy")
    assert len(a["trials"]) == 2
    assert a["trials"] == b["trials"], (a["trials"], b["trials"])
    scores = [r["val_cross_entropy"] for r in a["trials"]]
    assert all(s is not None for s in scores)
    print("seed 0 twice:", [(r["reg_weight"], r["val_cross_entropy"]) for r in a["trials"]])
    # keras-tuner reads 0 as "no seed": it gets seed + 1.
    assert tuning.oracle.oracle_seed(0) == 1
    oracle = json.loads((tmp_path / "a" / "search" / "oracle.json").read_text())
    assert oracle["seed"] == 1


def test_each_trial_starts_at_epoch_0_and_is_seeded_by_the_trial(tmp_path, monkeypatch):
    seeds, epochs = [], []

    real_set_seed = keras.utils.set_random_seed
    monkeypatch.setattr(
        keras.utils, "set_random_seed", lambda s: (seeds.append(s), real_set_seed(s))
    )
    real_fit = keras.Model.fit

    def fit(self, x=None, *args, **kwargs):
        epochs.append(getattr(x, "epoch", None))
        return real_fit(self, x, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit)
    _search(tmp_path / "s", seed=5, trials=3, epochs=2)
    keras_minent_batches = [e for e in epochs if e is not None]
    if keras_minent_batches:  # the NumPy path (JAX, PyTorch): an epoch counter
        assert keras_minent_batches == [0, 0, 0], epochs
    expected = {tuning.trial_seed(5, t) for t in ("0", "1", "2")}
    assert expected <= set(seeds)


def test_resume_with_another_space_or_recipe_is_refused(one_trial_copy):
    out = one_trial_copy
    for change, field in [
        ({"losses": ("mix_ent",)}, "losses"),
        ({"weight_min": 1e-4}, "weight_min"),
        ({"learning_rate": 0.01}, "learning_rate"),
        ({"batch_size": 26}, "batch_size"),
        ({"epochs": 2}, "epochs"),
        ({"seed": 1}, "seed"),
    ]:
        with pytest.raises(tuning.SearchStateError, match=rf"another space or recipe \({field}:"):
            _search(out, trials=2, **change)
    result = _search(out, trials=2)  # more trials of the same search: fine
    assert len(result["trials"]) == 2


def test_corrupt_or_missing_keras_tuner_files_are_named(one_trial_copy):
    out = one_trial_copy
    project = out / "search"
    trial = next(project.glob("trial_*")) / "trial.json"
    trial.write_text("{garbled")
    with pytest.raises(tuning.SearchStateError, match=rf"{trial}.*corrupt.*--output-dir"):
        _search(out, trials=2)
    trial.unlink()
    with pytest.raises(tuning.SearchStateError, match=rf"{trial}.*missing"):
        _search(out, trials=2)
    os.remove(out / "search_config.json")
    with pytest.raises(tuning.SearchStateError, match="search_config.json.*missing"):
        _search(out, trials=2)
