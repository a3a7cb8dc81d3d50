"""Batches for `fit` as `keras.utils.PyDataset`: every backend, no TensorFlow.

`TrainingBatches` yields exactly the batches of the tf.data
`training_dataset` (same `order.epoch_batches`), so results do not depend on
the backend's loader.

How the epoch is known: `fit` calls the dataset's `on_epoch_end` after every
epoch, but also once before the first one (after peeking at a batch to build
the model), so counting calls would be off by one. `TrainingBatches` starts
at `initial_epoch` and moves to the next epoch at `on_epoch_end` only when it
has served every batch of the current epoch since the last move. That is
exact for two or more batches per epoch. To be exact in every case (one batch
per epoch included), also pass `callbacks=[ds.epoch_callback()]` to `fit`: it
sets the epoch from `fit`'s own epoch number.

Pass `shuffle=False` to `fit`: with `shuffle=True` (its default) Keras
shuffles the batches of a `PyDataset` itself, with Python's `random`, which
breaks the seeded order (the dataset warns when it sees batches requested
out of order).
"""

from __future__ import annotations

import threading
import warnings

import keras
import numpy as np

from keras_minent.datasets import order


def check_shard(batch_size: int, drop_remainder: bool, shard) -> tuple[int, int]:
    """`(index, count)` of a shard argument, checked."""
    index, count = shard or (0, 1)
    if count > 1 and (not drop_remainder or batch_size % count or not 0 <= index < count):
        raise ValueError(
            f"shard={shard}: a batch of {batch_size} must split into {count} equal parts "
            "(and drop_remainder=True); choose a batch size divisible by the number of "
            "processes."
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    return index, count


class TrainingBatches(keras.utils.PyDataset):
    """Shuffled training batches whose order depends only on `(seed, epoch)`.

    See `training_dataset` for the arguments. `len()` is the number of
    batches of one epoch; `epoch` is the epoch whose batches it serves.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        seed: int,
        epochs: int,
        initial_epoch: int = 0,
        drop_remainder: bool = False,
        shard: tuple[int, int] | None = None,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ):
        super().__init__(
            workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size
        )
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels.")
        self.shard = check_shard(batch_size, drop_remainder, shard)
        self.images, self.labels = images, labels
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.epochs, self.initial_epoch = int(epochs), int(initial_epoch)
        self.drop_remainder = bool(drop_remainder)
        self._epoch = self.initial_epoch
        self._batches = None  # (epoch, list of index arrays)
        self._served: set[int] = set()
        self._last = -1
        self._warned = False
        self._lock = threading.Lock()

    @property
    def epoch(self) -> int:
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Serves the batches of `epoch` from now on."""
        with self._lock:
            self._epoch = int(epoch)
            self._served.clear()

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)

    def batch_indices(self, epoch: int) -> list[np.ndarray]:
        """The example indices of every batch of `epoch` (cached for the current epoch)."""
        cached = self._batches
        if cached is None or cached[0] != epoch:
            batches = order.epoch_batches(
                len(self.images),
                self.batch_size,
                self.seed,
                epoch,
                drop_remainder=self.drop_remainder,
                shard=self.shard,
            )
            cached = self._batches = (epoch, batches)
        return cached[1]

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} of an epoch of {len(self)} batches")
        with self._lock:
            epoch = self._epoch
            self._served.add(i)
            out_of_order = i not in (0, self._last + 1) and self.workers <= 1
            self._last = i
        if out_of_order and not self._warned:
            self._warned = True
            warnings.warn(
                "TrainingBatches: batches requested out of order; the seeded order per "
                "(seed, epoch) is lost. Pass shuffle=False to fit (the dataset shuffles "
                "itself).",
                stacklevel=2,
            )
        b = self.batch_indices(epoch)[i]
        return self.images[b], self.labels[b]

    def on_epoch_end(self) -> None:
        with self._lock:
            if len(self._served) >= len(self):
                self._epoch += 1
            self._served.clear()

    def epoch_callback(self) -> keras.callbacks.Callback:
        """A callback that sets this dataset's epoch from `fit`'s epoch number."""
        return _EpochSync(self)


class _EpochSync(keras.callbacks.Callback):
    def __init__(self, dataset: TrainingBatches):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.set_epoch(epoch)


class EvaluationBatches(keras.utils.PyDataset):
    """`(images, labels)` in order, in batches of `batch_size`, for `evaluate`/`predict`."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, **kwargs):
        super().__init__(**kwargs)
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels.")
        self.images, self.labels, self.batch_size = images, labels, int(batch_size)

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} of {len(self)}")
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.images[s], self.labels[s]
