"""EMNIST-Letters with the official split, as `tf.data` datasets or NumPy arrays.

Splits:

* `"train"`: the official 124,800 training images.
* `"test"`: the official 20,800 test images.
* `"validation"`: 10,400 images (1/12) carved from `"train"` by a fixed
  seeded permutation (`VALIDATION_SEED`), the same on every machine.
* `"train_without_validation"`: the other 114,400 training images.

Use `"train_without_validation"` to fit and `"validation"` to select
epochs or hyperparameters; keep `"test"` for the final number.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from keras_minent.datasets import idx

VALIDATION_SEED = 20250123
VALIDATION_FRACTION = 1 / 12
SPLITS = ("train", "test", "validation", "train_without_validation")


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
        `round(num_train / 12)` distinct sorted indices.
    """
    num_val = int(round(num_train * VALIDATION_FRACTION))
    return np.sort(np.random.default_rng(seed).permutation(num_train)[:num_val])


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
    four files in tfds's manual directory (`<data_dir>/downloads/manual`),
    else by downloading NIST's archive (checked against its SHA-256).

    Args:
        data_dir: tfds data directory (default: tfds's, `~/tensorflow_datasets`).
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

    b = EmnistLettersOfficial(data_dir=None if data_dir is None else os.fspath(data_dir))
    if b.is_prepared():
        return b
    if (
        idx_dir is not None
        and idx.missing_files(idx_dir)
        and not os.path.isfile(os.path.join(idx_dir, idx.ZIP_NAME))
    ):
        raise idx.EmnistDataError(
            f"--idx-dir {idx_dir} must hold NIST's {idx.ZIP_NAME} or the four files "
            f"{', '.join(idx.REQUIRED_FILES)}; it lacks {', '.join(idx.missing_files(idx_dir))}."
        )
    manual = os.fspath(idx_dir) if idx_dir is not None else None
    if not download:
        default_manual = os.path.join(b.data_dir_root, "downloads", "manual")
        where = manual or default_manual
        if not os.path.isdir(where) or (
            idx.missing_files(where) and not os.path.isfile(os.path.join(where, idx.ZIP_NAME))
        ):
            raise idx.EmnistDataError(
                f"EMNIST-Letters is not prepared in {b.data_dir_root} and download=False. "
                f"Put NIST's {idx.ZIP_NAME} or the four files {', '.join(idx.REQUIRED_FILES)} "
                f"in {where}, or pass idx_dir=."
            )
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual))
    return b


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
        data_dir: tfds data directory.
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


def load_arrays(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """One split as NumPy arrays `(images uint8 (N, 28, 28, 1), labels int64)`.

    In the order of NIST's files.

    EMNIST-Letters fits in memory (124,800 images are 98 MB); arrays feed
    every backend and `training_dataset`. Arguments as `emnist_letters`.
    """
    images, labels, index = [], [], []
    for ex in _examples(split, data_dir, idx_dir, download).batch(8192).as_numpy_iterator():
        images.append(ex["image"])
        labels.append(ex["label"])
        index.append(ex["index"])
    if not images:
        raise idx.EmnistDataError(f"EMNIST-Letters split {split!r} is empty.")
    order = np.argsort(np.concatenate(index), kind="stable")
    return np.concatenate(images)[order], np.concatenate(labels).astype(np.int64)[order]


def training_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    seed: int,
    epochs: int,
    initial_epoch: int = 0,
    drop_remainder: bool = False,
    shard: tuple[int, int] | None = None,
):
    """Shuffled training batches whose order depends only on `(seed, epoch)`.

    Epoch `e` is a stateless permutation seeded by `(seed, e)`, so a run
    resumed at `initial_epoch` sees exactly the batches an uninterrupted run
    would. Batches are gathered from in-memory tensors (no per-example work)
    and prefetched. Pass `steps_per_epoch=steps_per_epoch(len(images),
    batch_size)` to `fit`.

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

    Returns:
        A `tf.data.Dataset` of `(images, labels)` batches covering the epochs.

    Raises:
        ValueError: If `shard` does not divide the batches evenly.
    """
    tf = import_tensorflow()
    index, count = shard or (0, 1)
    if count > 1 and (not drop_remainder or batch_size % count or not 0 <= index < count):
        raise ValueError(
            f"shard={shard}: a batch of {batch_size} must split into {count} equal parts "
            "(and drop_remainder=True); choose a batch size divisible by the number of "
            "processes."
        )
    part = batch_size // count
    n = len(images)
    x = tf.constant(images)
    y = tf.constant(labels)

    def one_epoch(epoch):
        perm = tf.random.experimental.stateless_shuffle(
            tf.range(n), seed=tf.stack([tf.cast(seed, tf.int64), epoch])
        )
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


def evaluation_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int):
    """Batched, prefetched `(images, labels)` in order, for `evaluate`/`predict`."""
    tf = import_tensorflow()
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)
