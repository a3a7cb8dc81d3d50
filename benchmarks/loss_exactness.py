"""Largest relative error of MinEntLoss / MixEntLoss against the float64 NumPy reference.

Sweeps logits and probabilities, integer labels (B,) and (B, 1), one-hot and soft
targets, label smoothing 0 and 0.2, natural and the paper's log bases, 5 seeds
(640 cases), on the backend of KERAS_BACKEND. The reference and the cases are the
tests' own (`keras_minent.testing.reference_case`).

    KERAS_BACKEND=jax python benchmarks/loss_exactness.py
"""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np

from keras_minent.testing import reference_case


def main() -> float:
    worst = 0.0
    grid = itertools.product(
        ("min_ent", "mix_ent"),
        (True, False),
        ("int", "int_col", "onehot", "soft"),
        (0.0, 0.2),
        ((math.e, math.e), (2.02, 10.73)),
        range(5),
    )
    for case in grid:
        got, want, *_ = reference_case(*case)
        worst = max(worst, float(np.max(np.abs(got - want) / np.abs(want))))
    print(f"{keras.backend.backend()}: max relative error over 640 cases {worst:.3g}")
    return worst


if __name__ == "__main__":
    main()
