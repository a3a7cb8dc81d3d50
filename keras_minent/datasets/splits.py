"""The four splits every dataset offers, and the fixed validation carve-out.

Splits:

* `"train"`: the dataset's training split (EMNIST-Letters: the official
  124,800 images).
* `"test"`: its test split (EMNIST-Letters: the official 20,800 images).
* `"validation"`: 1/12 of `"train"` (EMNIST-Letters: 10,400 images), carved
  out by a fixed permutation (`order.permutation`, keyed by `VALIDATION_SEED`),
  the same on every machine and with every NumPy version.
* `"train_without_validation"`: the rest of `"train"` (EMNIST-Letters: 114,400).

Use `"train_without_validation"` to fit and `"validation"` to select
epochs or hyperparameters; keep `"test"` for the final number.
"""

from __future__ import annotations

import numpy as np

from keras_minent.datasets import order

VALIDATION_SEED = 20250123
VALIDATION_FRACTION = 1 / 12
SPLITS = ("train", "test", "validation", "train_without_validation")


def check_split(split: str) -> None:
    """Refuses a split name that is not one of `SPLITS`.

    Raises:
        ValueError: For an unknown split.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; expected one of {SPLITS}.")


def validation_indices(num_train: int, seed: int = VALIDATION_SEED) -> np.ndarray:
    """Sorted positions (in the training split) of the validation examples.

    Args:
        num_train: Number of training examples (124,800 for EMNIST-Letters).
        seed: Seed of the permutation.

    Returns:
        `round(num_train / 12)` distinct sorted indices: the first ones of
        `order.permutation(num_train, (seed,))` (SplitMix64 numbers sorted;
        independent of NumPy's random generators and of TensorFlow).
    """
    num_val = int(round(num_train * VALIDATION_FRACTION))
    return np.sort(order.permutation(num_train, (int(seed),))[:num_val])


def validation_mask(num_train: int, split: str) -> np.ndarray:
    """Boolean mask over the training split: True for the examples of `split`
    (`"validation"` or `"train_without_validation"`)."""
    mask = np.zeros(num_train, bool)
    mask[validation_indices(num_train)] = True
    return ~mask if split == "train_without_validation" else mask


def select_split(official: dict, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split of `{"train": (x, y), "test": (x, y)}`, carving out validation.

    Args:
        official: The dataset's two official splits as `(images, labels)`.
        split: One of `SPLITS`.

    Returns:
        `(images, labels)` of the split, in the official order.

    Raises:
        ValueError: For an unknown split.
    """
    check_split(split)
    if split in ("train", "test"):
        return official[split]
    x, y = official["train"]
    mask = validation_mask(len(y), split)
    return x[mask], y[mask]
