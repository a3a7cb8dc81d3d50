"""Data-parallel training on the engines that exist: tf.distribute and keras.distribution.

Modes:

* `"none"`: one device (the default).
* `"gpus"`: all local accelerators. TensorFlow: `tf.distribute.MirroredStrategy`
  (BatchNorm statistics synchronized across replicas); JAX:
  `keras.distribution.DataParallel` over `jax.devices()` (one SPMD program, so
  BatchNorm sees the global batch).
* `"multiworker"`: several machines. Refused for now, with the reason: on
  TensorFlow, `MultiWorkerMirroredStrategy` fails inside Keras 3.15's `fit`
  (keras-team/keras#20585); on JAX, Keras's multi-process `DataParallel`
  trains (seen with two CPU processes and gloo collectives) but its per-epoch
  validation fails unless the validation set splits into equal per-process
  batches.

The batch size is global: each of N replicas gets `batch_size / N` examples.
The losses need nothing special: they are ordinary Keras losses, which Keras
scales for the number of replicas.
"""

from __future__ import annotations

import contextlib

import keras

MODES = ("none", "gpus", "multiworker")


def _check(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"Unknown distribution mode {mode!r}; expected one of {MODES}.")
    if mode != "none" and keras.backend.backend() not in ("tensorflow", "jax"):
        raise ValueError(
            f"Distribution mode {mode!r} needs the TensorFlow or JAX backend "
            f"(KERAS_BACKEND={keras.backend.backend()})."
        )


class Distribution:
    """A configured distribution: `scope()` for building and compiling the model.

    Args:
        mode: One of `MODES`.
        tf_devices: TensorFlow only: devices for `"gpus"` (default: all GPUs,
            else the CPU); e.g. two logical CPUs in tests.

    Example:
    ```python
    dist = keras_minent.distribute.Distribution("gpus")
    with dist.scope():
        model = keras_minent.vgg5(synchronized_bn=dist.synchronized_bn)
        model.compile(...)
    model.fit(...)
    ```
    """

    def __init__(self, mode: str = "none", tf_devices: list[str] | None = None):
        _check(mode)
        self.mode = mode
        self.strategy = None
        backend = keras.backend.backend()
        if mode == "none":
            return
        if backend == "tensorflow":
            import tensorflow as tf

            if mode == "multiworker":
                raise ValueError(
                    "--distribute multiworker is not available on the TensorFlow backend: "
                    "Keras 3.15's fit fails under MultiWorkerMirroredStrategy (it all-reduces "
                    "the first batch and scalar metrics over workers; keras-team/keras#20585). "
                    "Use KERAS_BACKEND=jax (multi-process DataParallel) or --distribute gpus."
                )
            self.strategy = tf.distribute.MirroredStrategy(devices=tf_devices)
        else:
            if mode == "multiworker":
                raise ValueError(
                    "--distribute multiworker is not supported yet on the JAX backend: "
                    "Keras 3.15's multi-process DataParallel re-batches and shards every "
                    "batch across processes, and the per-epoch validation fails when the "
                    "validation set does not divide into equal per-process batches (seen "
                    "with two CPU processes). Use --distribute gpus on each machine."
                )
            keras.distribution.set_distribution(keras.distribution.DataParallel())

    @property
    def num_replicas(self) -> int:
        if self.strategy is not None:
            return int(self.strategy.num_replicas_in_sync)
        dist = keras.distribution.distribution() if self.mode != "none" else None
        if dist is not None:
            return int(dist.device_mesh.devices.size)
        return 1

    @property
    def synchronized_bn(self) -> bool:
        """Whether BatchNorm must synchronize statistics (TensorFlow replicas)."""
        return self.strategy is not None

    def scope(self):
        """Context in which to build, compile and load models."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    @property
    def is_chief(self) -> bool:
        """Whether this process writes checkpoints and results."""
        if keras.backend.backend() == "jax":
            import jax

            return jax.process_index() == 0
        return True
