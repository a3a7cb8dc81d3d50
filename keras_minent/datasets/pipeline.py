"""Batches for `fit` and `evaluate`, from NumPy arrays of any dataset.

`training_dataset` is a `tf.data.Dataset` on the TensorFlow backend and a
`keras.utils.PyDataset` (`loaders`) elsewhere, with the same batches in the
same order: epoch `e` is `order.epoch_order(n, seed, e)`, so a resumed run
sees exactly the batches of an uninterrupted one. TensorFlow is imported only
for the tf.data pipeline.
"""

from __future__ import annotations

import importlib.util

import keras
import numpy as np

from keras_minent.datasets import loaders, order


def has_module(module: str) -> bool:
    """Whether `module` is installed (without importing it)."""
    return importlib.util.find_spec(module) is not None


def default_pipeline() -> str:
    """`"tf.data"` on the TensorFlow backend (TensorFlow installed), else `"numpy"`."""
    if keras.backend.backend() == "tensorflow" and has_module("tensorflow"):
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


def check_pipeline(pipeline: str | None) -> str:
    """The pipeline to use: `pipeline`, else `default_pipeline()`.

    Raises:
        ValueError: For a pipeline other than `"numpy"` or `"tf.data"`.
    """
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
    pipeline = check_pipeline(pipeline)
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
    if check_pipeline(pipeline) == "numpy":
        return loaders.EvaluationBatches(images, labels, batch_size)
    tf = import_tensorflow()
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)
