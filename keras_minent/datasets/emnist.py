"""EMNIST-Letters with the official split, as NumPy arrays, PyDatasets or `tf.data`.

Splits:

* `"train"`: the official 124,800 training images.
* `"test"`: the official 20,800 test images.
* `"validation"`: 10,400 images (1/12) carved from `"train"` by a fixed
  permutation (`order.permutation`, keyed by `VALIDATION_SEED`), the same on
  every machine and with every NumPy version.
* `"train_without_validation"`: the other 114,400 training images.

Use `"train_without_validation"` to fit and `"validation"` to select
epochs or hyperparameters; keep `"test"` for the final number.

Two loaders give identical arrays: the NumPy one (`arrays.prepared`, no
TensorFlow needed; cache `<data_dir>/emnist_letters_official.npz`) and, on the
TensorFlow backend where tensorflow-datasets is installed, the tfds builder
(cache `<data_dir>/emnist_letters_official/`). Both use one data directory
(default `$KERAS_MINENT_DATA`, else `~/keras_minent_datasets`) and share its
`downloads/manual/` and the downloaded `downloads/gzip.zip`, so a machine with
both never downloads twice. Both record where the data came from (`records`).
Batches for `fit`: `training_dataset` is a
`tf.data.Dataset` on the TensorFlow backend and a `keras.utils.PyDataset`
elsewhere, with the same batches in the same order.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil

import keras
import numpy as np

from keras_minent.datasets import arrays as arrays_lib
from keras_minent.datasets import download as download_lib
from keras_minent.datasets import idx, loaders, order
from keras_minent.datasets import records as prov

logger = logging.getLogger(__name__)

VALIDATION_SEED = 20250123
VALIDATION_FRACTION = 1 / 12
SPLITS = ("train", "test", "validation", "train_without_validation")
LOADERS = ("numpy", "tfds")


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def default_loader() -> str:
    """`"tfds"` on the TensorFlow backend where tfds is installed, else `"numpy"`."""
    if (
        keras.backend.backend() == "tensorflow"
        and _has("tensorflow")
        and _has("tensorflow_datasets")
    ):
        return "tfds"
    return "numpy"


def default_pipeline() -> str:
    """`"tf.data"` on the TensorFlow backend (TensorFlow installed), else `"numpy"`."""
    if keras.backend.backend() == "tensorflow" and _has("tensorflow"):
        return "tf.data"
    return "numpy"


def import_tensorflow():
    """Imports TensorFlow for tf.data only; on other backends it gets no GPU."""
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:  # already initialised: nothing more to do
            pass
    return tf


def validation_indices(num_train: int, seed: int = VALIDATION_SEED) -> np.ndarray:
    """Sorted positions (in NIST's training file) of the validation examples.

    Args:
        num_train: Number of training examples (124,800 officially).
        seed: Seed of the permutation.

    Returns:
        `round(num_train / 12)` distinct sorted indices: the first ones of
        `order.permutation(num_train, (seed,))` (SplitMix64 numbers sorted;
        independent of NumPy's random generators and of TensorFlow).
    """
    num_val = int(round(num_train * VALIDATION_FRACTION))
    return np.sort(order.permutation(num_train, (int(seed),))[:num_val])


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; expected one of {SPLITS}.")


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
        why = arrays_lib.mismatch(prov.read_record(_record_path(b)), source)
        if why is None:
            return b
        logger.warning("Rebuilding EMNIST-Letters in %s: %s.", b.data_dir, why)
        shutil.rmtree(b.data_dir)
        b = EmnistLettersOfficial(data_dir=data_dir)
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual))
    if getattr(b, "provenance_record", None) is not None:
        prov.write_record(_record_path(b), b.provenance_record)
    return b


def _record_path(b) -> str:
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
    _check_split(split)
    tf = import_tensorflow()
    b = builder(data_dir, idx_dir, download)
    base = "test" if split == "test" else "train"
    ds = b.as_dataset(split=base, shuffle_files=False)
    if split in ("validation", "train_without_validation"):
        num_train = b.info.splits["train"].num_examples
        mask = np.zeros(num_train, bool)
        mask[validation_indices(num_train)] = True
        if split == "train_without_validation":
            mask = ~mask
        mask = tf.constant(mask)
        ds = ds.filter(lambda ex: tf.gather(mask, ex["index"]))
    return ds


def _tfds_split(split, data_dir, idx_dir, download) -> tuple[np.ndarray, np.ndarray]:
    images, labels, index = [], [], []
    for ex in _examples(split, data_dir, idx_dir, download).batch(8192).as_numpy_iterator():
        images.append(ex["image"])
        labels.append(ex["label"])
        index.append(ex["index"])
    if not images:
        raise idx.EmnistDataError(f"EMNIST-Letters split {split!r} is empty.")
    order_ = np.argsort(np.concatenate(index), kind="stable")
    return np.concatenate(images)[order_], np.concatenate(labels).astype(np.int64)[order_]


def _tfds_record(data_dir, idx_dir, download) -> dict:
    """The tfds directory's record; one of source "unknown" for an unrecorded one."""
    b = builder(data_dir, idx_dir, download)
    record = prov.read_record(_record_path(b))
    if record is None:
        official = {s: _tfds_split(s, data_dir, None, download) for s in ("train", "test")}
        record = prov.make_record(official, {"source": "unknown", "location": None})
        prov.write_record(_record_path(b), record)
    return record


def _check_loader(loader):
    loader = loader or default_loader()
    if loader not in LOADERS:
        raise ValueError(f"Unknown loader {loader!r}; expected one of {LOADERS}.")
    return loader


def select_split(official: dict, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split of `{"train": (x, y), "test": (x, y)}`, carving out validation."""
    _check_split(split)
    if split in ("train", "test"):
        return official[split]
    x, y = official["train"]
    mask = np.zeros(len(y), bool)
    mask[validation_indices(len(y))] = True
    if split == "train_without_validation":
        mask = ~mask
    return x[mask], y[mask]


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
    _check_split(split)
    loader = _check_loader(loader)
    if loader == "numpy":
        official, record = arrays_lib.prepared(data_dir, idx_dir, download)
        return (*select_split(official, split), record)
    record = _tfds_record(data_dir, idx_dir, download)
    if not record.get("verified"):
        logger.warning("EMNIST-Letters (tfds): %s.", prov.describe(record))
    return (*_tfds_split(split, data_dir, None, download), record)


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
    loader = _check_loader(loader)
    if loader == "numpy":
        return arrays_lib.prepared(data_dir, idx_dir, download)[1]
    return _tfds_record(data_dir, idx_dir, download)


def _check_pipeline(pipeline):
    pipeline = pipeline or default_pipeline()
    if pipeline not in ("numpy", "tf.data"):
        raise ValueError(f"Unknown pipeline {pipeline!r}; expected 'numpy' or 'tf.data'.")
    return pipeline


def training_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    seed: int,
    epochs: int,
    initial_epoch: int = 0,
    drop_remainder: bool = False,
    shard: tuple[int, int] | None = None,
    pipeline: str | None = None,
):
    """Shuffled training batches whose order depends only on `(seed, epoch)`.

    Epoch `e` is `order.epoch_order(len(images), seed, e)` (a documented
    permutation, the same with NumPy and tf.data), cut into batches, so a
    run resumed at `initial_epoch` sees exactly the batches an uninterrupted
    run would, on every backend. Pass `steps_per_epoch=steps_per_epoch(
    len(images), batch_size, drop_remainder)` to `fit`.

    Args:
        images: uint8 images `(N, 28, 28, 1)`.
        labels: Integer labels `(N,)`.
        batch_size: Batch size (the last batch of an epoch may be smaller).
        seed: Shuffling seed.
        epochs: Last epoch (exclusive), as in `fit`.
        initial_epoch: First epoch, as in `fit`.
        drop_remainder: Drop each epoch's last partial batch, so every batch
            has the static size `batch_size` (needed to split batches across
            replicas and processes).
        shard: `(index, count)`: yield only part `index` of `count` equal
            contiguous parts of every batch (one process's part of the global
            batch). Needs `drop_remainder=True` and `batch_size % count == 0`.
        pipeline: `"tf.data"`: a prefetched `tf.data.Dataset` covering the
            epochs `initial_epoch..epochs-1`; `"numpy"`: a
            `loaders.TrainingBatches` (`keras.utils.PyDataset`, no TensorFlow),
            one epoch per pass, starting at `initial_epoch` and moving on at
            each `on_epoch_end` (see `loaders` for how `fit` drives it).
            Default: `default_pipeline()` (tf.data on the TensorFlow backend).

    Returns:
        A `tf.data.Dataset` or a `keras.utils.PyDataset` of `(images, labels)`.

    Raises:
        ValueError: If `shard` does not divide the batches evenly.
    """
    pipeline = _check_pipeline(pipeline)
    index, count = loaders.check_shard(batch_size, drop_remainder, shard)
    if pipeline == "numpy":
        return loaders.TrainingBatches(
            images, labels, batch_size, seed, epochs, initial_epoch, drop_remainder, shard
        )
    tf = import_tensorflow()
    part = batch_size // count
    n = len(images)
    x = tf.constant(images)
    y = tf.constant(labels)

    def permutation(epoch):
        return order.epoch_order(n, seed, int(epoch))

    def one_epoch(epoch):
        perm = tf.numpy_function(permutation, [epoch], tf.int64, stateful=False)
        perm.set_shape([n])
        batches = tf.data.Dataset.from_tensor_slices(perm).batch(
            batch_size, drop_remainder=drop_remainder
        )
        if count > 1:
            batches = batches.map(lambda i: i[index * part : (index + 1) * part])
        return batches.map(lambda i: (tf.gather(x, i), tf.gather(y, i)))

    ds = tf.data.Dataset.range(initial_epoch, epochs).flat_map(one_epoch)
    return ds.prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(num_examples: int, batch_size: int, drop_remainder: bool = False) -> int:
    """Batches in one epoch of `training_dataset`."""
    if drop_remainder:
        return num_examples // batch_size
    return -(-num_examples // batch_size)


def evaluation_dataset(
    images: np.ndarray, labels: np.ndarray, batch_size: int, pipeline: str | None = None
):
    """Batched `(images, labels)` in order, for `evaluate`/`predict`.

    A prefetched `tf.data.Dataset` for `pipeline="tf.data"`, a
    `loaders.EvaluationBatches` (`keras.utils.PyDataset`) for `"numpy"`;
    default `default_pipeline()`.
    """
    if _check_pipeline(pipeline) == "numpy":
        return loaders.EvaluationBatches(images, labels, batch_size)
    tf = import_tensorflow()
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)
