"""Data and a callback the worker scripts share (imported from the scripts' own directory).

Two steps on the same data and initial weights: the first compares the loss
(with sample weights, some zero) at equal weights, the second also the update
(gradients all-reduced across replicas). Later steps diverge chaotically at
the float32 rounding level (synchronized BatchNorm sums in another order), so
they are not compared.
"""

from __future__ import annotations

import keras
import numpy as np

#: Training steps per comparison (16 examples in batches of 8).
STEPS = 2
BATCH = 8


def data(n: int = 16, seed: int = 0):
    """`n` random uint8 images, labels of 26 classes and sample weights (every 5th zero)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 28, 28, 1)).astype("uint8")
    y = rng.integers(0, 26, size=n)
    w = rng.uniform(0.0, 2.0, size=n).astype("float32")
    w[::5] = 0.0
    return x, y, w


class StepLosses(keras.callbacks.Callback):
    """Records the loss Keras reports after every training step."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(float(logs["loss"]))
