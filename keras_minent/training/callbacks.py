"""The callbacks of a run: the paper's learning-rate rule and the run state."""

from __future__ import annotations

import json
import math
import os
import tempfile
import time

import keras
import numpy as np

from keras_minent.training.files import save_model, write_json


class PaperLearningRateRule(keras.callbacks.Callback):
    """The recipe's learning-rate rule, seeded and resumable.

    After every epoch whose `monitor` does not improve on the best so far,
    the learning rate becomes `base_lr * u**3` with `u ~ U(0, 1)` drawn from a
    generator seeded by `seed`; after an improving epoch it stays as it is.

    Args:
        base_lr: The base learning rate (paper: 0.005).
        monitor: The metric that must improve (higher is better).
        seed: Seed of the generator.

    Example:
    ```python
    model.fit(..., callbacks=[PaperLearningRateRule(0.005, seed=0)])
    ```
    """

    def __init__(self, base_lr: float, monitor: str = "val_accuracy", seed: int = 0):
        super().__init__()
        self.base_lr = float(base_lr)
        self.monitor = monitor
        self.rng = np.random.default_rng(seed)
        self.best = -math.inf

    def next_rate(self, value: float) -> float | None:
        """Updates the rule with an epoch's metric; returns the new rate or None."""
        if value > self.best:
            self.best = value
            return None
        return self.base_lr * float(self.rng.uniform()) ** 3

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self.monitor not in logs:
            raise KeyError(f"PaperLearningRateRule: {self.monitor!r} not in logs {list(logs)}")
        rate = self.next_rate(float(logs[self.monitor]))
        if rate is not None:
            self.model.optimizer.learning_rate.assign(rate)
        logs["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )

    def get_state(self) -> dict:
        return {"best": self.best, "rng": self.rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self.best = state["best"]
        self.rng.bit_generator.state = state["rng"]


def _seed_variables(model: keras.Model) -> list:
    """The random-state variables of dropout and augmentation layers.

    `model.save` does not store them, so `RunState` does: without them a
    resumed run would draw other dropout masks and augmentations.
    """
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def get_seed_states(model: keras.Model) -> list[list[int]]:
    return [keras.ops.convert_to_numpy(v).tolist() for v in _seed_variables(model)]


def set_seed_states(model: keras.Model, states: list[list[int]]) -> None:
    variables = _seed_variables(model)
    if len(variables) != len(states):
        raise ValueError("The checkpoint's random states do not match the model.")
    for v, value in zip(variables, states):
        v.assign(np.asarray(value, dtype=keras.backend.standardize_dtype(v.dtype)))


class RunState(keras.callbacks.Callback):
    """Backs up a run after every epoch and restores it when `fit` begins again.

    After every epoch it writes `checkpoint.keras` (weights and optimizer),
    `best.keras` (when the monitored metric improved) and `state.json` (the
    finished epochs' history, the best epoch so far, the random states of
    the model's layers and the learning-rate rule's state). Like
    `keras.callbacks.BackupAndRestore`, it restores all of this in
    `on_train_begin` into the new (built and compiled) model, so that a
    restarted run continues exactly where the last finished epoch left it.
    The state is read when the callback is made: `initial_epoch` is the
    number of finished epochs, for the data pipeline and `fit`.

    Args:
        output_dir: The run's directory.
        monitor: The metric that selects `best.keras` (higher is better).
        lr_rule: The learning-rate rule whose state is kept, or None.
        writes: False on non-chief workers: they read the chief's state.
        collective_saves: Multi-process JAX: saving is a collective, so the
            processes that do not write save too, into a scratch directory.
    """

    def __init__(
        self,
        output_dir: str,
        monitor: str,
        lr_rule: PaperLearningRateRule | None,
        writes: bool = True,
        collective_saves: bool = False,
    ):
        super().__init__()
        self.dir = output_dir
        self.writes = writes
        self.collective_saves = collective_saves
        self.monitor = monitor
        self.lr_rule = lr_rule
        self.history: dict[str, list[float]] = {}
        self.best_epoch = -1
        self.best_value = -math.inf
        self.epoch_times: list[float] = []
        self.initial_epoch = 0
        self._seed_states: list | None = None
        self._t0 = 0.0
        if os.path.isfile(self.state_path):
            self._read_state()

    @property
    def state_path(self) -> str:
        return os.path.join(self.dir, "state.json")

    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.dir, "checkpoint.keras")

    def _read_state(self) -> None:
        with open(self.state_path) as f:
            state = json.load(f)
        self.history = state["history"]
        self.best_epoch, self.best_value = state["best_epoch"], state["best_value"]
        self.epoch_times = state["epoch_times"]
        self._seed_states = state["seed_states"]
        if self.lr_rule is not None and state.get("lr_rule"):
            self.lr_rule.set_state(state["lr_rule"])
        self.initial_epoch = int(state["epochs_done"])

    def on_train_begin(self, logs=None):
        if not self.initial_epoch:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self.checkpoint_path)  # weights and optimizer state
        set_seed_states(self.model, self._seed_states)
        self.model._initial_epoch = self.initial_epoch  # as BackupAndRestore does

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_times.append(time.perf_counter() - self._t0)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        value = float(logs[self.monitor])
        improved = value > self.best_value
        if improved:
            self.best_value, self.best_epoch = value, epoch
        if not self.writes:
            if self.collective_saves:
                with tempfile.TemporaryDirectory() as scratch:
                    for name in ("best.keras",) * improved + ("checkpoint.keras",):
                        self.model.save(os.path.join(scratch, name))
                    get_seed_states(self.model)
            return
        if improved:
            save_model(self.model, os.path.join(self.dir, "best.keras"))
        save_model(self.model, self.checkpoint_path)
        write_json(
            self.state_path,
            {
                "epochs_done": epoch + 1,
                "history": self.history,
                "best_epoch": self.best_epoch,
                "best_value": self.best_value,
                "epoch_times": self.epoch_times,
                "seed_states": get_seed_states(self.model),
                "lr_rule": self.lr_rule.get_state() if self.lr_rule else None,
            },
        )
