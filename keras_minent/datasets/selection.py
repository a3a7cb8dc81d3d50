"""The arrays of a run: which split plays which role, and generated smoke-test data."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from keras_minent.datasets import emnist, idx


def write_synthetic(directory: str, size: int) -> str:
    """Generated images in EMNIST's official files, written once into `directory`.

    Args:
        directory: Where the four `.gz` files go (kept if already there).
        size: Number of training images (the test split has `size // 6`).

    Returns:
        `directory`, to pass as `idx_dir`.
    """
    if idx.missing_files(directory):
        idx.write_official_files(
            directory,
            {"train": idx.synthetic_letters(size, 1), "test": idx.synthetic_letters(size // 6, 2)},
            synthetic=True,
        )
    return directory


def load_data(
    config: Any,
    selection: str = "validation",
    roles: tuple[str, ...] = ("fit", "val", "test"),
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The arrays of a run: `{"fit", "val", "test"}` (only `roles`) as `(images, labels)`.

    With `selection="test"` (the paper's protocol) "fit" is the whole training
    split and "val" the test split; otherwise "fit" is the training split
    without the validation carve-out and "val" that carve-out. `synthetic`
    data are generated once into the output directory.

    Args:
        config: The data options (`keras_minent.training.DataOptions`:
            `output_dir`, `data_dir`, `idx_dir`, `download`, `synthetic`,
            `synthetic_size`).
        selection: `"validation"` or `"test"`.
        roles: The roles to load.

    Raises:
        EmnistDataError: If the data cannot be found or is corrupt.
    """
    output_dir = config.output_dir
    data_dir, idx_dir, download = config.data_dir, config.idx_dir, config.download
    if config.synthetic:
        raw = write_synthetic(os.path.join(output_dir, "synthetic_raw"), config.synthetic_size)
        data_dir, idx_dir, download = os.path.join(output_dir, "synthetic_tfds"), raw, False
    splits = {
        "fit": "train" if selection == "test" else "train_without_validation",
        "val": "test" if selection == "test" else "validation",
        "test": "test",
    }
    return {role: emnist.load_arrays(splits[role], data_dir, idx_dir, download) for role in roles}
