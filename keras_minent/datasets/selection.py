"""The arrays of a run: which split plays which role, and generated smoke-test data."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from keras_minent.datasets import arrays, emnist, idx


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
    data are generated once into the output directory. `load_data_with_record`
    also returns where the data came from.

    Args:
        config: The data options (`keras_minent.training.DataOptions`:
            `output_dir`, `data_dir`, `idx_dir`, `download`, `synthetic`,
            `synthetic_size`).
        selection: `"validation"` or `"test"`.
        roles: The roles to load.

    Raises:
        EmnistDataError: If the data cannot be found or is corrupt.
    """
    return load_data_with_record(config, selection, roles)[0]


def load_data_with_record(
    config: Any,
    selection: str = "validation",
    roles: tuple[str, ...] = ("fit", "val", "test"),
    loader: str | None = None,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict]:
    """`load_data` and the provenance record of the data (one load of the official split).

    Returns:
        `(arrays, record)`: the arrays as `load_data` returns them, and the
        record as `keras_minent.datasets.records` documents it (`source`,
        `verified`, `location`, `arrays_sha256`, `fingerprint`, ...).

    Raises:
        EmnistDataError: If the data cannot be found, is corrupt, is empty or
            has labels that are not class ids.
    """
    data_dir, idx_dir, download = config.data_dir, config.idx_dir, config.download
    if config.synthetic:
        raw = write_synthetic(
            os.path.join(config.output_dir, "synthetic_raw"), config.synthetic_size
        )
        data_dir, idx_dir, download = os.path.join(config.output_dir, "synthetic_tfds"), raw, False
    official, record = _official(data_dir, idx_dir, download, loader)
    splits = {
        "fit": "train" if selection == "test" else "train_without_validation",
        "val": "test" if selection == "test" else "validation",
        "test": "test",
    }
    data = {role: emnist.select_split(official, splits[role]) for role in roles}
    for role, (images, labels) in data.items():
        _check_labels(role, images, labels, record)
    return data, record


def _official(data_dir, idx_dir, download, loader) -> tuple[dict, dict]:
    """`({"train": (x, y), "test": (x, y)}, record)`, each split read once."""
    loader = emnist._check_loader(loader)
    if loader == "numpy":
        return arrays.prepared(data_dir, idx_dir, download)
    record = emnist._tfds_record(data_dir, idx_dir, download)
    official = {s: emnist._tfds_split(s, data_dir, None, download) for s in ("train", "test")}
    return official, record


def _check_labels(role: str, images: np.ndarray, labels: np.ndarray, record: dict) -> None:
    """Refuses an empty split, and labels that are not class ids 0..25."""
    where = record.get("location") or "the prepared dataset"
    if len(labels) == 0 or len(images) != len(labels):
        raise idx.EmnistDataError(
            f"The {role} split of {where} has {len(labels)} labels for {len(images)} images: "
            "a run needs at least one example in each split."
        )
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise idx.EmnistDataError(
                f"The {role} labels of {where} are not whole numbers (floats such as 1.5): "
                "labels must be class ids 0..25."
            )
    elif labels.dtype.kind not in "iu":
        raise idx.EmnistDataError(f"The {role} labels of {where} are {labels.dtype}, not ids.")
    if labels.min() < 0 or labels.max() > 25:
        raise idx.EmnistDataError(
            f"The {role} labels of {where} range over {labels.min()}..{labels.max()}: "
            "EMNIST-Letters' class ids are 0..25."
        )
