"""EMNIST-Letters with the official split, as NumPy arrays or `tf.data`.

The splits (`"train"`: the official 124,800 training images, `"test"`: the
official 20,800 test images, `"validation"`: 10,400 of the training images,
`"train_without_validation"`: the other 114,400) are those of every dataset
(`splits`); batches for `fit` come from `pipeline` (`training_dataset`,
`evaluation_dataset`), re-exported here.

Two loaders give identical arrays: the NumPy one (`arrays.prepared`, no
TensorFlow needed; cache `<data_dir>/emnist_letters_official.npz`) and, on the
TensorFlow backend where tensorflow-datasets is installed, the tfds builder
(cache `<data_dir>/emnist_letters_official/`). Both use one data directory
(default `$KERAS_MINENT_DATA`, else `~/keras_minent_datasets`) and share its
`downloads/manual/` and the downloaded `downloads/gzip.zip`, so a machine with
both never downloads twice. Both record where the data came from (`records`).
"""

from __future__ import annotations

import logging
import os
import shutil

import keras
import numpy as np

from keras_minent.datasets import arrays as arrays_lib
from keras_minent.datasets import download as download_lib
from keras_minent.datasets import idx
from keras_minent.datasets import records as prov
from keras_minent.datasets.pipeline import (  # noqa: F401 - public here too
    default_pipeline,
    evaluation_dataset,
    has_module,
    import_tensorflow,
    steps_per_epoch,
    training_dataset,
)
from keras_minent.datasets.splits import (  # noqa: F401 - public here too
    SPLITS,
    VALIDATION_FRACTION,
    VALIDATION_SEED,
    check_split,
    select_split,
    validation_indices,
    validation_mask,
)

logger = logging.getLogger(__name__)

LOADERS = ("numpy", "tfds")


def default_loader() -> str:
    """`"tfds"` on the TensorFlow backend where tfds is installed, else `"numpy"`."""
    if (
        keras.backend.backend() == "tensorflow"
        and has_module("tensorflow")
        and has_module("tensorflow_datasets")
    ):
        return "tfds"
    return "numpy"


def builder(
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
    download: bool = True,
):
    """The prepared tfds builder of EMNIST-Letters (official split).

    Prepares the dataset on first use: from `idx_dir` (a directory with the
    four official `.gz` files) if given, else from NIST's `gzip.zip` or the
    four files in the manual directory (`<data_dir>/downloads/manual`), else
    from an archive the NumPy loader downloaded (`<data_dir>/downloads/gzip.zip`),
    else by downloading NIST's archive there (checked against its SHA-256).

    The source is recorded in `keras_minent_provenance.json` in the builder's
    data directory. A prepared directory is reused only for its own source: a
    call naming another `idx_dir` (or the same one with other files) rebuilds
    it, with a warning.

    Args:
        data_dir: The data directory, shared with the NumPy loader (default:
            `$KERAS_MINENT_DATA`, else `~/keras_minent_datasets`, on every backend).
        idx_dir: Directory holding the four `emnist-letters-*-ubyte.gz` files.
        download: If False, never use the network.

    Returns:
        A prepared `tfds.core.DatasetBuilder`.

    Raises:
        EmnistDataError: If the data cannot be found or is corrupt.
    """
    import_tensorflow()
    import tensorflow_datasets as tfds

    from keras_minent.datasets.tfds_builder import EmnistLettersOfficial

    data_dir = arrays_lib.default_data_dir() if data_dir is None else os.fspath(data_dir)
    manual = os.fspath(idx_dir) if idx_dir is not None else None
    if idx_dir is not None:
        arrays_lib.check_idx_dir(idx_dir)
    # Nothing prepared, nothing to prepare from and no way to download: say so before
    # tfds looks at (warns about, creates) any directory.
    if (
        not os.path.isdir(os.path.join(data_dir, EmnistLettersOfficial.name))
        and arrays_lib.local_source(data_dir, manual, None) is None
        and (not download or not download_lib.network_reachable())
    ):
        where = manual or arrays_lib.manual_dir(data_dir)
        raise idx.EmnistDataError(arrays_lib.missing_data_message(data_dir, where, download))
    b = EmnistLettersOfficial(data_dir=data_dir)
    if b.is_prepared():
        if idx_dir is None:
            return b
        source = arrays_lib.identify(idx_dir, b.expected_zip_sha256)
        why = arrays_lib.mismatch(prov.read_record(record_path(b)), source)
        if why is None:
            return b
        logger.warning("Rebuilding EMNIST-Letters in %s: %s.", b.data_dir, why)
        shutil.rmtree(b.data_dir)
        b = EmnistLettersOfficial(data_dir=data_dir)
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual))
    if getattr(b, "provenance_record", None) is not None:
        prov.write_record(record_path(b), b.provenance_record)
    return b


def record_path(b) -> str:
    """The provenance record's path in a tfds builder's data directory."""
    return os.path.join(os.fspath(b.data_dir), prov.RECORD_NAME)


def emnist_letters(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
    download: bool = True,
):
    """EMNIST-Letters as a `tf.data.Dataset` of `(image, label)`.

    Images are uint8 `(28, 28, 1)`, upright; labels int64 in `0..25`
    (a/A = 0). Not tfds's `emnist/letters`, which holds only the first
    88,800 / 14,800 images and declares 37 classes.

    Args:
        split: One of `SPLITS` (see the module docstring).
        data_dir: The data directory (as `builder`).
        idx_dir: Directory holding the four official `.gz` files (offline use).
        download: If False, never use the network.

    Returns:
        An unbatched `tf.data.Dataset`, in a fixed order (tfds's).

    Raises:
        ValueError: For an unknown split.
        EmnistDataError: If the data cannot be found or is corrupt.

    Example:
    ```python
    ds = keras_minent.datasets.emnist_letters("validation", idx_dir="EMNIST/raw")
    ```
    """
    tf = import_tensorflow()
    return _examples(split, data_dir, idx_dir, download).map(
        lambda ex: (ex["image"], ex["label"]), num_parallel_calls=tf.data.AUTOTUNE
    )


def _examples(split, data_dir, idx_dir, download):
    """The split's examples as dicts (`image`, `label`, `index`)."""
    check_split(split)
    tf = import_tensorflow()
    b = builder(data_dir, idx_dir, download)
    base = "test" if split == "test" else "train"
    ds = b.as_dataset(split=base, shuffle_files=False)
    if split in ("validation", "train_without_validation"):
        num_train = b.info.splits["train"].num_examples
        mask = tf.constant(validation_mask(num_train, split))
        ds = ds.filter(lambda ex: tf.gather(mask, ex["index"]))
    return ds


def tfds_split(
    split: str,
    data_dir: str | os.PathLike | None,
    idx_dir: str | os.PathLike | None,
    download: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """One split read from the tfds builder as NumPy arrays, in the order of NIST's files.

    Args:
        split: One of `SPLITS`.
        data_dir: As `builder`.
        idx_dir: As `builder`.
        download: As `builder`.

    Returns:
        `(images uint8 (N, 28, 28, 1), labels int64)`.

    Raises:
        EmnistDataError: If the split is empty or the data cannot be prepared.
    """
    images, labels, index = [], [], []
    for ex in _examples(split, data_dir, idx_dir, download).batch(8192).as_numpy_iterator():
        images.append(ex["image"])
        labels.append(ex["label"])
        index.append(ex["index"])
    if not images:
        raise idx.EmnistDataError(f"EMNIST-Letters split {split!r} is empty.")
    order_ = np.argsort(np.concatenate(index), kind="stable")
    return np.concatenate(images)[order_], np.concatenate(labels).astype(np.int64)[order_]


def tfds_record(
    data_dir: str | os.PathLike | None, idx_dir: str | os.PathLike | None, download: bool
) -> dict:
    """The tfds directory's provenance record (prepares the builder if needed).

    A directory prepared without a record gets one of source "unknown", computed from
    its arrays and written beside them.

    Returns:
        The record as `keras_minent.datasets.records` documents it.
    """
    b = builder(data_dir, idx_dir, download)
    record = prov.read_record(record_path(b))
    if record is None:
        official = {s: tfds_split(s, data_dir, None, download) for s in ("train", "test")}
        record = prov.make_record(official, {"source": "unknown", "location": None})
        prov.write_record(record_path(b), record)
    return record


def check_loader(loader: str | None) -> str:
    """The loader to use: `loader`, else `default_loader()`.

    Raises:
        ValueError: For a loader not in `LOADERS`.
    """
    loader = loader or default_loader()
    if loader not in LOADERS:
        raise ValueError(f"Unknown loader {loader!r}; expected one of {LOADERS}.")
    return loader


def load_official(
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
    download: bool = True,
    loader: str | None = None,
) -> tuple[dict, dict]:
    """Both official splits and the provenance record, each split read once.

    Args:
        data_dir: As `load_arrays`.
        idx_dir: As `load_arrays`.
        download: As `load_arrays`.
        loader: As `load_arrays`.

    Returns:
        `({"train": (images, labels), "test": (images, labels)}, record)`.

    Raises:
        EmnistDataError: If the data cannot be found or is corrupt.
    """
    loader = check_loader(loader)
    if loader == "numpy":
        return arrays_lib.prepared(data_dir, idx_dir, download)
    record = tfds_record(data_dir, idx_dir, download)
    official = {s: tfds_split(s, data_dir, None, download) for s in ("train", "test")}
    return official, record


def load_arrays_with_info(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
    download: bool = True,
    loader: str | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """`load_arrays` plus the prepared dataset's provenance record.

    Returns:
        `(images, labels, record)`; `record` as `keras_minent.datasets.records` documents it
        (`source`, `verified`, `location`, `arrays_sha256`, `fingerprint`, ...).
    """
    check_split(split)
    loader = check_loader(loader)
    if loader == "numpy":
        official, record = arrays_lib.prepared(data_dir, idx_dir, download)
        return (*select_split(official, split), record)
    record = tfds_record(data_dir, idx_dir, download)
    if not record.get("verified"):
        logger.warning("EMNIST-Letters (tfds): %s.", prov.describe(record))
    return (*tfds_split(split, data_dir, None, download), record)


def load_arrays(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
    download: bool = True,
    loader: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One split as NumPy arrays `(images uint8 (N, 28, 28, 1), labels int64)`.

    In the order of NIST's files. EMNIST-Letters fits in memory (124,800
    images are 98 MB); arrays feed every backend and `training_dataset`.

    Args:
        split: As `emnist_letters`.
        idx_dir: As `emnist_letters`.
        download: As `emnist_letters`.
        data_dir: Where the data are downloaded and prepared, by either loader
            (default `$KERAS_MINENT_DATA` or `~/keras_minent_datasets`).
        loader: `"numpy"` (no TensorFlow needed) or `"tfds"`; default
            `default_loader()`: tfds on the TensorFlow backend where it is
            installed. Both give identical arrays.
    """
    images, labels, _ = load_arrays_with_info(split, data_dir, idx_dir, download, loader)
    return images, labels


def provenance(
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
    download: bool = True,
    loader: str | None = None,
) -> dict:
    """Where the prepared dataset came from, and its fingerprint (prepares it if needed).

    See `keras_minent.datasets.records` for the fields.
    """
    loader = check_loader(loader)
    if loader == "numpy":
        return arrays_lib.prepared(data_dir, idx_dir, download)[1]
    return tfds_record(data_dir, idx_dir, download)
