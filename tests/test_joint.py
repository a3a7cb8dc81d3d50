"""Several runs trained together (`keras_minent.training.joint`, `joint_run`).

Each member of a joint run must behave exactly as a separate run: the same
loss, gradients and updates from the same weights and batches, its own
learning rate, its own failures, and a kill-and-resume that continues every
member from the last committed epoch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import SMALL, SMALL_CLI

from keras_minent import _keras_private, losses, models
from keras_minent.cli import main
from keras_minent.testing import BACKEND
from keras_minent.training import (
    PAPER_RESULTS,
    ConfigError,
    NonFiniteLossError,
    TrainConfig,
    joint,
    joint_run,
    reproduce,
    train_seeds,
)


def _member(seed: int, name: str) -> keras.Model:
    """A member (VGG-5 without dropout and augmentation), seeded, its paths under `name`."""
    keras.utils.set_random_seed(seed)
    with keras.name_scope(name):
        return models.vgg5(dropout=0.0, augment=False, seed=seed)


def _batches(n_members: int, steps: int):
    rng = np.random.default_rng(1)
    return [
        [
            (
                rng.integers(0, 256, (8, 28, 28, 1)).astype("float32"),
                rng.integers(0, 26, 8),
            )
            for _ in range(n_members)
        ]
        for _ in range(steps)
    ]


@pytest.mark.backend_matrix
def test_joint_steps_equal_separate_models():
    """Same weights, same batches: each member's losses and updated weights
    (BatchNorm statistics included) equal a separate model's, with its own loss
    and its own learning rate."""
    member_losses = [
        losses.get("min_ent", 0.3, from_logits=True),
        losses.get("mix_ent", 0.5, from_logits=True),
    ]
    rates = [0.01, 0.001]
    members = [_member(3, "m0"), _member(4, "m1")]
    separate = []
    for m, loss, rate in zip(members, member_losses, rates):
        copy = keras.models.clone_model(m)
        copy.set_weights(m.get_weights())
        copy.compile(keras.optimizers.Adam(rate), loss)
        separate.append(copy)
    names = ["m0", "m1"]
    model = joint.joint_model(members, names)
    model.compile(
        optimizer=joint.MemberAdam([m.trainable_variables for m in members], rates),
        loss=dict(zip(names, member_losses)),
    )
    for step in _batches(2, 3):
        logs = model.train_on_batch(
            tuple(x for x, _ in step), {n: y for n, (_, y) in zip(names, step)}, return_dict=True
        )
        for k, (copy, (x, y)) in enumerate(zip(separate, step)):
            alone = copy.train_on_batch(x, y, return_dict=True)
            np.testing.assert_allclose(logs[f"m{k}_loss"], alone["loss"], rtol=1e-5)
    for k, (m, copy) in enumerate(zip(members, separate)):
        step = rates[k]  # an Adam step moves a weight by about its learning rate
        for a, b, w in zip(m.get_weights(), copy.get_weights(), m.weights):
            if "conv" in w.path and w.path.endswith("bias"):
                # A bias before BatchNorm has a zero gradient: Adam turns its round-off
                # into steps of +-lr, which differ with the summation order of a backend.
                continue
            # Within 1% of one step (round-off that Adam amplifies where a gradient is
            # tiny); a wrong rate or a leaked gradient moves weights by whole steps.
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=step / 100, err_msg=f"{k} {w.path}")


# --------------------------------------------------------------------------
# Whole runs (TensorFlow by default; tiny synthetic data)
# --------------------------------------------------------------------------

COMPARED = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def _histories(out, seeds=(0, 1)) -> dict[int, dict]:
    return {
        s: json.loads((out / f"seed_{s}" / "results.json").read_text())["history"] for s in seeds
    }


def _assert_same_histories(got: dict, want: dict, epochs: int | None = None) -> None:
    for seed, history in want.items():
        for key in COMPARED:
            np.testing.assert_allclose(
                got[seed][key][:epochs], history[key][:epochs], rtol=1e-4, err_msg=f"{seed} {key}"
            )


def write_rgb_npz(path) -> None:
    """A tiny RGB 32x32 dataset with labels 3 and 7 (not EMNIST's shape or classes)."""
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8),
        y_train=np.where(np.arange(48) % 2, 7, 3),
        x_test=rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8),
        y_test=np.where(np.arange(12) % 2, 7, 3),
    )


def test_seeds_train_together_from_the_command_line(tmp_path):
    """`train --seeds 2 --seed-parallel on` as typed, on an RGB 32x32 two-class dataset:
    each seed keeps a separate run's files with a model of the data's shape and
    classes, and the summary comes from them."""
    out, data = tmp_path / "run", tmp_path / "rgb.npz"
    write_rgb_npz(data)
    assert main(["train", "--dataset", str(data), "--batch-size", "11", "--verbose", "0",
                 "--epochs", "2", "--seeds", "2", "--seed-parallel", "on",
                 "--output-dir", str(out)]) == 0  # fmt: skip
    for seed in (0, 1):
        member = out / f"seed_{seed}"
        for name in ("config.json", "state.json", "checkpoint.keras", "best.keras",
                     "inference.keras", "results.json", "curves.png"):  # fmt: skip
            assert (member / name).is_file(), name
        results = json.loads((member / "results.json").read_text())
        assert results["seed_parallel"]["joint"] is True and results["config"]["seed"] == seed
        assert json.loads((member / "state.json").read_text())["epochs_done"] == 2
        best = keras.saving.load_model(member / "best.keras")
        assert best.input_shape == (None, 32, 32, 3) and best.output_shape == (None, 2)
    joint_state = json.loads((out / joint_run.JOINT_STATE_NAME).read_text())
    assert joint_state["epochs_done"] == 2
    assert sorted(joint_state["members"]) == ["seed_0", "seed_1"]
    assert json.loads((out / "seeds.json").read_text())["summary"]["n"] == 2
    histories = _histories(out)
    assert histories[0]["loss"] != histories[1]["loss"]  # different seeds, different members


def test_a_diverging_member_is_reported_and_the_others_finish(tmp_path):
    base = TrainConfig(output_dir=str(tmp_path), epochs=1, **SMALL)
    configs = [
        dataclasses.replace(base, seed=0, output_dir=str(tmp_path / "seed_0")),
        dataclasses.replace(base, seed=1, learning_rate=1e30, output_dir=str(tmp_path / "seed_1")),
    ]
    results, failures = joint_run.train_together(configs, str(tmp_path))
    assert [r["config"]["seed"] for r in results] == [0]
    assert list(failures) == ["seed_1"]
    assert "seed_1" in failures["seed_1"] and "not finite" in failures["seed_1"]
    assert math.isfinite(results[0]["history"]["loss"][0])
    assert (tmp_path / "seed_0" / "results.json").is_file()
    assert not (tmp_path / "seed_1" / "results.json").exists()
    state = json.loads((tmp_path / joint_run.JOINT_STATE_NAME).read_text())
    assert list(state["failed"]) == ["seed_1"] and list(state["members"]) == ["seed_0"]


def test_refusals_and_the_automatic_choice(tmp_path):
    cpu = {"kind": "cpu", "name": "x", "capability": None}
    gpu = {"kind": "gpu", "name": "x", "capability": "9.0"}
    base = TrainConfig(output_dir=str(tmp_path), **SMALL)
    assert joint_run.seed_parallel_choice(base, 4, cpu)["joint"] is False
    # auto follows a measurement: none on a GPU yet, a loss on the CPU.
    assert joint_run.seed_parallel_choice(base, 4, gpu)["joint"] is False
    assert "not measured" in joint_run.seed_parallel_choice(base, 4, gpu)["reason"]
    assert "0.97x" in joint_run.seed_parallel_choice(base, 4, cpu)["reason"]
    assert joint_run.seed_parallel_choice(base, 1, gpu)["joint"] is False
    assert main(["train", *SMALL_CLI, "--seed-parallel", "on", "--output-dir", str(tmp_path)]) == 2
    on = dataclasses.replace(base, seed_parallel=True)
    for change, words in (
        ({"distribute": "gpus"}, "--distribute gpus"),
        ({"precision": "mixed_float16"}, "loss scale"),
    ):
        with pytest.raises(ConfigError, match=words):
            joint_run.seed_parallel_choice(dataclasses.replace(on, **change), 4, gpu)
        auto = joint_run.seed_parallel_choice(dataclasses.replace(base, **change), 4, gpu)
        assert auto["joint"] is False
    with pytest.raises(ConfigError, match="one run to train"):
        joint_run.seed_parallel_choice(on, 1, gpu)
    with pytest.raises(ConfigError, match="--seed-parallel must be auto, on or off"):
        TrainConfig(output_dir=str(tmp_path), seed_parallel="sometimes")


class _ChangedIndex(keras.optimizers.Adam):
    """An Adam whose `_get_variable_index` takes another parameter."""

    def _get_variable_index(self, variable, strict=True):
        return super()._get_variable_index(variable)


class _NoMomentums(keras.optimizers.Adam):
    """An Adam without `_momentums` once built."""

    def build(self, var_list):
        super().build(var_list)
        del self._momentums


@pytest.mark.backend_matrix
def test_the_private_keras_apis_are_checked():
    """The installed Keras has the private APIs the joint step uses; a Keras where one
    is missing or takes other parameters is named."""
    assert _keras_private.private_api_problems() == []
    assert _keras_private.private_api_refusal() is None
    changed = _keras_private.private_api_problems(_ChangedIndex)
    assert changed == [
        "keras.optimizers.Adam._get_variable_index takes ('self', 'variable', 'strict') "
        "instead of ('self', 'variable')"
    ]
    assert _keras_private.private_api_problems(_NoMomentums) == [
        "keras.optimizers.Adam._momentums is missing"
    ]


def test_a_keras_with_other_private_apis_refuses_to_train_together(tmp_path, monkeypatch, capsys):
    """`--seed-parallel on` is refused in one line naming the API, the Keras found and the
    versions checked; `auto` then trains one after another even where it measured a gain."""
    changed = _keras_private.PrivateApi(
        "keras.optimizers.Adam", "_var_key", ("self", "variable", "extra"), "a changed API"
    )
    monkeypatch.setattr(_keras_private, "PRIVATE_APIS", (changed,))
    argv = ["train", *SMALL_CLI, "--seeds", "2", "--seed-parallel", "on"]
    assert main([*argv, "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("keras-minent: error: --seed-parallel on cannot apply: ")
    for part in ("Adam._var_key", f"Keras {keras.__version__}", "3.10.0 to 3.15.1", "off"):
        assert part in err
    assert not os.listdir(tmp_path)  # refused before anything was written
    monkeypatch.setitem(joint_run.MEASURED_JOINT_GAIN, "cpu", (2.0, "a measurement"))
    cpu = {"kind": "cpu", "name": "x", "capability": None}
    auto = joint_run.seed_parallel_choice(TrainConfig(output_dir=str(tmp_path)), 2, cpu)
    assert auto["joint"] is False and "Adam._var_key" in auto["reason"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """An uninterrupted joint run of seeds 0 and 1, 3 epochs, with dropout and augmentation."""
    out = tmp_path_factory.mktemp("joint")
    train_seeds(TrainConfig(output_dir=str(out), epochs=3, seed_parallel=True, **SMALL), 2)
    return out


@pytest.mark.slow
def test_joint_histories_equal_separate_runs(tmp_path, uninterrupted):
    """Every seed's history in a joint run is its separate run's (same initial
    weights, batches, dropout and augmentation draws, learning-rate rule)."""
    config = TrainConfig(output_dir=str(tmp_path), epochs=3, seed_parallel=False, **SMALL)
    train_seeds(config, 2)
    _assert_same_histories(_histories(uninterrupted), _histories(tmp_path))


KILL = (
    f"SMALL = {SMALL!r}\n"
    + """
import os, sys
from keras_minent.training import TrainConfig, callbacks, joint_state, train_seeds

where = sys.argv[2]
if where == "before_commit":  # members staged epoch 2's files; no commit yet
    write = joint_state.write_joint_state
    def kill(path, epochs_done, members):
        if epochs_done == 2:
            os._exit(9)
        write(path, epochs_done, members)
    joint_state.write_joint_state = kill
else:  # epoch 2 committed; seed_0's state.json written, seed_1's not yet
    finish = callbacks.RunState.finish
    def kill(self, old, improved):
        if self.state["epochs_done"] == 2:
            os._exit(9)
        finish(self, old, improved)
    callbacks.RunState.finish = kill
config = TrainConfig(output_dir=sys.argv[1], epochs=3, seed_parallel=True, **SMALL)
train_seeds(config, 2)
"""
)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["after_commit"])  # before it: RunState's own window
def test_kill_and_resume_gives_the_uninterrupted_history(tmp_path, where, uninterrupted):
    out = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, "-c", KILL, str(out), where],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "KERAS_BACKEND": BACKEND},
    )
    assert proc.returncode == 9, proc.stderr[-3000:]
    done = [
        json.loads((out / f"seed_{s}" / "state.json").read_text())["epochs_done"] for s in (0, 1)
    ]
    assert done == ([1, 1] if where == "before_commit" else [2, 1])
    config = TrainConfig(output_dir=str(out), epochs=3, seed_parallel=True, **SMALL)
    train_seeds(config, 2)
    _assert_same_histories(_histories(out), _histories(uninterrupted))
    for seed in (0, 1):  # only the committed epoch's files are left
        stamped = sorted(p.name for p in (out / f"seed_{seed}").glob("checkpoint-*.keras"))
        assert stamped == ["checkpoint-3.keras"]


def test_reproduce_trains_its_four_arms_as_one_joint_run(tmp_path, monkeypatch):
    """`reproduce` hands every arm's runs to one joint run and builds its table from the
    members' results; an arm whose runs all stopped is named and left out."""
    calls = []

    def fake_train_together(configs, output_dir, choice):
        calls.append([os.path.relpath(c.output_dir, output_dir) for c in configs])
        for c in configs:
            os.makedirs(c.output_dir, exist_ok=True)
        results = [
            {"config": dataclasses.asdict(c), "test_accuracy": 0.9 + 0.01 * c.seed,
             "test_ece": 0.05, "test_mean_entropy": 0.2, "selected_epoch": 1,
             "val_accuracy": 0.9, "train_seconds": 1.0, "images_per_second": 1.0,
             "selection": "validation", "note": None}
            for c in configs if c.loss != "mix_ent"
        ]  # fmt: skip
        failed = {n: f"{n}: loss not finite" for n in calls[-1] if n.startswith("vgg5_mix_ent/")}
        return results, failed

    monkeypatch.setattr(joint_run, "train_together", fake_train_together)
    config = TrainConfig(output_dir=str(tmp_path), seed_parallel=True, **SMALL)
    with pytest.raises(NonFiniteLossError, match="vgg5_mix_ent/seed_0"):
        reproduce(config, 2)
    arms = [key.replace("/", "_") for key in PAPER_RESULTS]
    assert calls == [[f"{arm}/seed_{s}" for arm in arms for s in (0, 1)]]
    rows = json.loads((tmp_path / "reproduce.json").read_text())
    assert [r["config"] for r in rows] == [k for k in PAPER_RESULTS if k != "vgg5/mix_ent"]
    assert all(r["n"] == 2 and r["paper"] == PAPER_RESULTS[r["config"]] for r in rows)
    assert rows[0]["mean"] == pytest.approx(0.905)


def test_reconcile_rolls_forward_only_the_kill_window(tmp_path):
    """A member one epoch behind the joint commit (a kill before its own state.json)
    is rolled forward; a member continued by a separate run is never rolled back."""

    def state(epochs):  # a run state as RunState writes it (the joint state is checked)
        return {
            "epochs_done": epochs,
            "history": {},
            "best_epoch": epochs - 1,
            "best_value": 0.5,
            "epoch_times": [1.0] * epochs,
            "seed_states": [],
        }

    def setup(own_epochs):
        (tmp_path / "seed_0").mkdir(exist_ok=True)
        (tmp_path / "seed_0" / "state.json").write_text(json.dumps(state(own_epochs)))
        joint_state = {"format": 1, "epochs_done": 2, "members": {"seed_0": state(2)}}
        (tmp_path / joint_run.JOINT_STATE_NAME).write_text(
            json.dumps({**joint_state, "failed": {}})
        )

    def own():
        return json.loads((tmp_path / "seed_0" / "state.json").read_text())["epochs_done"]

    setup(1)
    assert joint_run.reconcile(str(tmp_path), ["seed_0"]) == {} and own() == 2
    setup(3)  # continued with --seed-parallel off: the joint state is out of date
    assert joint_run.reconcile(str(tmp_path), ["seed_0"]) == {} and own() == 3
    with pytest.raises(ConfigError, match="holds a joint run of"):
        joint_run.reconcile(str(tmp_path), ["seed_0", "seed_1"])
