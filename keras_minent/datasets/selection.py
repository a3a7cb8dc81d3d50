"""The arrays of a run: which split plays which role, and generated smoke-test data."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from keras_minent.datasets import arrays, emnist, idx, order, records, sources
from keras_minent.datasets import splits as splits_lib
from keras_minent.datasets.data_record import DataRecord

#: The keys of the subsets `--max-train-examples` / `--max-eval-examples` take,
#: by split: the first N of `order.permutation(n, (VALIDATION_SEED, k))`, sorted.
SUBSET_KEYS = {"train": 1, "train_without_validation": 1, "validation": 2, "test": 3}


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


def check_data_dir(data_dir: str | None) -> None:
    """Refuses a `--data-dir` that does not exist (a typo would otherwise be created and
    filled); the default data directory (None) is created when needed.

    Raises:
        DataError: If `data_dir` is given and is not an existing directory.
    """
    if data_dir is None or os.path.isdir(data_dir):
        return
    what = "is not a directory" if os.path.exists(data_dir) else "does not exist"
    raise idx.DataError(
        f"--data-dir {data_dir} {what}: create it, or leave --data-dir out to use "
        f"{arrays.default_data_dir()} (created when needed)."
    )


def load_data(
    config: Any,
    selection: str = "validation",
    roles: tuple[str, ...] = ("fit", "val", "test"),
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The arrays of a run: `{"fit", "val", "test"}` (only `roles`) as `(images, labels)`.

    The data are `config.dataset` (`emnist_letters` by default; see
    `keras_minent.datasets.sources` for the other forms). With `selection="test"` (the paper's protocol) "fit" is the whole training
    split and "val" the test split; otherwise "fit" is the training split
    without the validation carve-out and "val" that carve-out. `synthetic`
    data are generated once into the output directory. Then
    `max_train_examples` limits "fit" and `max_eval_examples` "val" and
    "test" to the first N of a fixed permutation of each (`SUBSET_KEYS`).
    `load_data_with_record` also returns where the data came from.

    Args:
        config: The data options (`keras_minent.training.DataOptions`:
            `dataset`, `output_dir`, `data_dir`, `idx_dir`, `download`,
            `synthetic`, `synthetic_size`, `max_train_examples`,
            `max_eval_examples`).
        selection: `"validation"` or `"test"`.
        roles: The roles to load.

    Raises:
        DataError: If the data cannot be found or is corrupt.
    """
    return load_data_with_record(config, selection, roles)[0]


def load_data_with_record(
    config: Any,
    selection: str = "validation",
    roles: tuple[str, ...] = ("fit", "val", "test"),
    loader: str | None = None,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], DataRecord]:
    """`load_data` and the record of the data (one load of the official split).

    Returns:
        `(arrays, record)`: the arrays as `load_data` returns them, and their
        `DataRecord`, made from the provenance record of the dataset
        (`keras_minent.datasets.records`, `sources`: `source`, `verified`,
        `location`, `arrays_sha256`, `fingerprint`, `num_classes`,
        `input_shape`, `label_mapping`, ...), with `limits` where a limit
        applies and `normalization` where "fit" is loaded: `mean` and `std`
        per channel in the [0, 1] scale, MNIST's published constants for
        EMNIST-Letters, else computed on "fit".

    Raises:
        DataError: If the data cannot be found, is corrupt, is empty or
            has labels that are not class ids (`EmnistDataError` for EMNIST-Letters).
    """
    dataset = getattr(config, "dataset", sources.EMNIST_LETTERS)
    if dataset == sources.EMNIST_LETTERS:
        data_dir, idx_dir, download = config.data_dir, config.idx_dir, config.download
        if config.synthetic:  # generated files, read directly (no cache, no tfds)
            raw = write_synthetic(
                os.path.join(config.output_dir, "synthetic_raw"), config.synthetic_size
            )
            source = arrays.identify(raw)
            official = arrays.read_source(source)
            record = records.make_record(official, source)
        else:
            check_data_dir(config.data_dir)
            official, record = emnist.load_official(data_dir, idx_dir, download, loader)
        record = sources.emnist_record(record)
    else:
        check_data_dir(config.data_dir)
        official, record = sources.load(dataset, config.data_dir, config.download)
    splits = {
        "fit": "train" if selection == "test" else "train_without_validation",
        "val": "test" if selection == "test" else "validation",
        "test": "test",
    }
    data = {role: splits_lib.select_split(official, splits[role]) for role in roles}
    for role, (images, labels) in data.items():
        _check_labels(role, images, labels, record)
    data, record = _limit(config, data, splits, record)
    if "fit" in data:
        record = {**record, "normalization": _normalization(record, data["fit"][0])}
    return data, DataRecord.from_provenance(record, data)


def _limit(config, data: dict, splits: dict, record: dict) -> tuple[dict, dict]:
    """Applies `max_train_examples` ("fit") and `max_eval_examples` ("val", "test")."""
    limits = {
        "fit": getattr(config, "max_train_examples", None),
        "val": getattr(config, "max_eval_examples", None),
        "test": getattr(config, "max_eval_examples", None),
    }
    if all(limits[role] is None for role in data):
        return data, record
    before = {role: int(len(y)) for role, (_, y) in data.items()}
    out = {}
    for role, (images, labels) in data.items():
        n = limits[role]
        if n is not None and n < len(labels):
            key = (splits_lib.VALIDATION_SEED, SUBSET_KEYS[splits[role]])
            keep = np.sort(order.permutation(len(labels), key)[:n])
            images, labels = images[keep], labels[keep]
        out[role] = (images, labels)
    record = {
        **record,
        "limits": {
            "max_train_examples": limits["fit"],
            "max_eval_examples": limits["val"],
            "examples_before_limits": before,
            "subset": "the first N of order.permutation(n, (VALIDATION_SEED, k)), sorted; "
            "k = 1 (training splits), 2 (validation), 3 (test)",
        },
    }
    return out, record


def _normalization(record: dict, fit_images: np.ndarray) -> dict:
    """The models' input normalisation: published for EMNIST-Letters, else from "fit"."""
    if record.get("kind") == sources.EMNIST_LETTERS:
        return {
            "mean": sources.MNIST_MEAN,
            "std": sources.MNIST_STD,
            "source": sources.PUBLISHED_NOTE,
        }
    mean, std = sources.channel_statistics(fit_images)
    return {
        "mean": mean,
        "std": std,
        "source": f"computed on the fit split ({len(fit_images)} images, after the validation "
        "carve-out and --max-train-examples), per channel in the [0, 1] scale",
    }


def _check_labels(role: str, images: np.ndarray, labels: np.ndarray, record: dict) -> None:
    """Refuses an empty split, and labels that are not class ids 0..K-1."""
    where = record.get("location") or "the prepared dataset"
    top = int(record.get("num_classes", 26)) - 1
    emnist_data = record.get("kind", sources.EMNIST_LETTERS) == sources.EMNIST_LETTERS
    error = idx.EmnistDataError if emnist_data else idx.DataError
    if len(labels) == 0 or len(images) != len(labels):
        raise error(
            f"The {role} split of {where} has {len(labels)} labels for {len(images)} images: "
            "a run needs at least one example in each split."
        )
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise error(
                f"The {role} labels of {where} are not whole numbers (floats such as 1.5): "
                f"labels must be class ids 0..{top}."
            )
    elif labels.dtype.kind not in "iu":
        raise error(f"The {role} labels of {where} are {labels.dtype}, not ids.")
    if labels.min() < 0 or labels.max() > top:
        name = "EMNIST-Letters'" if emnist_data else "the dataset's"
        raise error(
            f"The {role} labels of {where} range over {labels.min()}..{labels.max()}: "
            f"{name} class ids are 0..{top}."
        )


def models_kwargs(record: DataRecord | dict) -> dict:
    """The data's arguments of the model builders (`vgg5`, `spinal_vgg5`): `input_shape`,
    `num_classes`, `mean` and `std` (`DataRecord.model_kwargs`) of the record
    `load_data_with_record` returned or of a `data` entry read back (a dict)."""
    if not isinstance(record, DataRecord):
        record = DataRecord.from_json(record)
    return record.model_kwargs()
