"""The paper's learning-rate rule: `PaperLearningRateRule` (seeded and resumable)."""

from __future__ import annotations

import math

import keras
import numpy as np


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
