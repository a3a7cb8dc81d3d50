"""Data-parallel training on the engines that exist: tf.distribute and keras.distribution.

Modes:

* `"none"`: one device (the default).
* `"gpus"`: all local accelerators. TensorFlow: `tf.distribute.MirroredStrategy`
  (BatchNorm statistics synchronized across replicas); JAX:
  `keras.distribution.DataParallel` over `jax.devices()` (one SPMD program, so
  BatchNorm sees the global batch).
* `"multiworker"`: several processes, usually one per machine, each with its
  local accelerators. TensorFlow: `tf.distribute.MultiWorkerMirroredStrategy`,
  the cluster read from `TF_CONFIG`. JAX: `keras.distribution.initialize`
  (`jax.distributed`), the cluster read from `KERAS_DISTRIBUTION_JOB_ADDRESSES`,
  `KERAS_DISTRIBUTION_NUM_PROCESSES` and `KERAS_DISTRIBUTION_PROCESS_ID`, then
  `DataParallel` over the devices of all processes.

The batch size is global: each of N replicas gets `batch_size / N` examples.
The losses need nothing special: they are ordinary Keras losses, which Keras
scales for the number of replicas, and the metrics sum their states across
replicas (`aggregation="sum"`).

`TrainingCluster.create(mode)` returns the part for the backend: a
`TrainingCluster` (one process, one device: mode `"none"`), a
`TensorFlowCluster` (a `tf.distribute` strategy) or a `JaxCluster` (a
`keras.distribution.DataParallel`), all answering the same questions. The
environment's description of a multi-worker cluster is checked in
`keras_minent._cluster_env` first.

Keras 3.15's TensorFlow trainer fails under `MultiWorkerMirroredStrategy`
(keras-team/keras#20585), and under `MirroredStrategy` when the first batch
does not split evenly across replicas; `TensorFlowCluster` therefore installs
`keras_minent._keras_tf_trainer_fix`, two narrow corrections of that trainer,
checked against the Keras version.
"""

from __future__ import annotations

import contextlib
import functools

import keras

from keras_minent import _cluster_env, _keras_tf_trainer_fix
from keras_minent._cluster_env import DEFAULT_COLLECTIVE_TIMEOUT as DEFAULT_COLLECTIVE_TIMEOUT
from keras_minent._cluster_env import JAX_ENV as JAX_ENV
from keras_minent.errors import PeerLostError

MODES = ("none", "gpus", "multiworker")

#: Exit status of the training command when a multi-worker job lost a peer:
#: restart every worker with the same command; they resume after the last
#: finished epoch (`EX_TEMPFAIL` of sysexits.h).
EXIT_PEER_LOST = 75


def _check(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"Unknown distribution mode {mode!r}; expected one of {MODES}.")
    if mode != "none" and keras.backend.backend() not in ("tensorflow", "jax"):
        raise ValueError(
            f"Distribution mode {mode!r} needs the TensorFlow or JAX backend "
            f"(KERAS_BACKEND={keras.backend.backend()})."
        )


@functools.cache  # TensorFlow sets up collectives once per process
def _multiworker_strategy():
    """The process's `MultiWorkerMirroredStrategy` (created once; later runs reuse it)."""
    import tensorflow as tf

    _cluster_env.check_tf_config()
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=_cluster_env.collective_timeout() or None
    )
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    _keras_tf_trainer_fix.install()
    return strategy


def _jax_initialize() -> None:
    """`jax.distributed` from the KERAS_DISTRIBUTION_* variables (CPU: gloo collectives)."""
    _cluster_env.check_jax_env()
    import jax

    if jax.distributed.is_initialized():
        return
    # Cross-process collectives on CPU devices need gloo (XLA's default: none);
    # the setting does not affect GPUs.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize()


class TrainingCluster:
    """Where a model trains: processes, replicas and the scope to build it in.

    This base class is one process on one device (mode `"none"`, any backend);
    `TensorFlowCluster` and `JaxCluster` answer the same questions for the
    distributed modes. Make one with `TrainingCluster.create(mode)`.

    In `"multiworker"` mode every process runs the same program. On JAX each
    process feeds its own part of every global batch (see `shards_data`;
    `datasets.training_dataset(..., shard=(cluster.process_index,
    cluster.num_processes))`) and must join every `model.save` (see
    `collective_saves`); on TensorFlow the strategy splits the batches itself.

    Example:
    ```python
    cluster = keras_minent.distribute.TrainingCluster.create("gpus")
    with cluster.scope():
        model = keras_minent.vgg5(synchronized_bn=cluster.synchronized_bn)
        model.compile(...)
    model.fit(...)
    ```
    """

    #: One of `MODES`.
    mode = "none"
    #: The `tf.distribute` strategy on TensorFlow, else None (e.g. for keras-tuner).
    strategy = None

    @staticmethod
    def create(mode: str = "none", tf_devices: list[str] | None = None) -> TrainingCluster:
        """The cluster of `mode` on the current backend, set up.

        Args:
            mode: One of `MODES`.
            tf_devices: TensorFlow only: devices for `"gpus"` (default: all
                GPUs, else the CPU); e.g. two logical CPUs in tests.

        Raises:
            ValueError: For an unknown mode, an unsupported backend, or a
                `"multiworker"` cluster that is not described in the environment.
        """
        _check(mode)
        if mode == "none":
            return TrainingCluster()
        if keras.backend.backend() == "tensorflow":
            return TensorFlowCluster(mode, tf_devices)
        return JaxCluster(mode)

    @property
    def num_replicas(self) -> int:
        """Number of model replicas over all processes."""
        return 1

    @property
    def num_processes(self) -> int:
        """Number of processes (workers) of the job."""
        return 1

    @property
    def process_index(self) -> int:
        """This process's position among `num_processes` (0: the chief)."""
        return 0

    @property
    def is_chief(self) -> bool:
        """Whether this process writes checkpoints and results."""
        return True

    @property
    def synchronized_bn(self) -> bool:
        """Whether BatchNorm must synchronize statistics (TensorFlow replicas)."""
        return False

    @property
    def shards_data(self) -> bool:
        """Whether each process must feed only its part of every global batch.

        True for multi-process JAX: keras_minent feeds Keras's `DataParallel`
        process-local data (`auto_shard_dataset=False`), so that evaluation
        can feed every process the whole validation set instead.
        """
        return False

    @property
    def collective_saves(self) -> bool:
        """Whether saving a model is a collective all processes must join (multi-process JAX)."""
        return self.shards_data

    def scope(self):
        """Context in which to build, compile and load models."""
        return contextlib.nullcontext()

    def all_values(self, value: int) -> list[int]:
        """`value` of every process, in process order (a collective: all must call it)."""
        if self.mode != "multiworker":
            return [int(value)]
        return self._gather(int(value))

    def barrier(self) -> None:
        """Waits until every process has reached this point."""
        self.all_values(0)

    @contextlib.contextmanager
    def peer_errors(self):
        """Turns the error a lost peer causes into `PeerLostError` (multi-worker only).

        Raises:
            PeerLostError: If a collective operation failed because another
                worker died or became unreachable.
        """
        if self.mode != "multiworker":
            yield
            return
        try:
            yield
        except Exception as e:
            if not self._is_peer_error(e):
                raise
            raise PeerLostError(
                f"A worker of this {self.num_processes}-process job was lost "
                f"({type(e).__name__}: {_reason(e)}). "
                "Restart every worker with the same command: they resume after the last "
                "finished epoch."
            ) from e

    def local_only(self) -> None:
        """After training: later models run on this process's devices alone."""

    def _gather(self, value: int) -> list[int]:
        """`all_values` across several processes."""
        raise NotImplementedError

    def _is_peer_error(self, e: BaseException) -> bool:
        """Whether `e` says that another process was lost."""
        return False


class TensorFlowCluster(TrainingCluster):
    """`"gpus"`: `MirroredStrategy`; `"multiworker"`: `MultiWorkerMirroredStrategy`."""

    def __init__(self, mode: str, tf_devices: list[str] | None = None):
        import tensorflow as tf

        self.mode = mode
        if mode == "multiworker":
            self.strategy = _multiworker_strategy()
        else:
            self.strategy = tf.distribute.MirroredStrategy(devices=tf_devices)
            _keras_tf_trainer_fix.install()

    @property
    def num_replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    @property
    def num_processes(self) -> int:
        if self.mode != "multiworker":
            return 1
        cluster = self.strategy.cluster_resolver.cluster_spec().as_dict()
        return len(cluster.get("chief", [])) + len(cluster.get("worker", []))

    @property
    def process_index(self) -> int:
        if self.mode != "multiworker":
            return 0
        resolver = self.strategy.cluster_resolver
        if resolver.task_type == "chief":
            return 0
        has_chief = "chief" in resolver.cluster_spec().as_dict()
        return int(resolver.task_id) + int(has_chief)

    @property
    def is_chief(self) -> bool:
        return bool(self.strategy.extended.should_checkpoint)

    @property
    def synchronized_bn(self) -> bool:
        return True

    def scope(self):
        return self.strategy.scope()

    def _gather(self, value: int) -> list[int]:
        import tensorflow as tf

        n, i = self.num_processes, self.process_index
        local_replicas = len(self.strategy.extended.worker_devices)

        def local(ctx):
            # One entry per process: only its first local replica contributes.
            first = ctx.replica_id_in_sync_group % local_replicas == 0
            return tf.one_hot(i, n, dtype=tf.int64) * (value if first else 0)

        per_replica = self.strategy.experimental_distribute_values_from_function(local)
        total = self.strategy.reduce("SUM", per_replica, axis=None)
        return [int(v) for v in total.numpy()]

    def _is_peer_error(self, e: BaseException) -> bool:
        import tensorflow as tf

        return isinstance(
            e,
            (
                tf.errors.UnavailableError,
                tf.errors.DeadlineExceededError,
                tf.errors.CancelledError,
                tf.errors.AbortedError,
            ),
        )


class JaxCluster(TrainingCluster):
    """`keras.distribution.DataParallel` over the devices of one (`"gpus"`) or all
    (`"multiworker"`, `jax.distributed`) processes."""

    def __init__(self, mode: str):
        self.mode = mode
        if mode == "multiworker":
            _jax_initialize()
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(auto_shard_dataset=False)
        )

    @property
    def num_replicas(self) -> int:
        dist = keras.distribution.distribution()  # None after `local_only()`
        return int(dist.device_mesh.devices.size) if dist is not None else 1

    @property
    def num_processes(self) -> int:
        import jax

        return jax.process_count() if self.mode == "multiworker" else 1

    @property
    def process_index(self) -> int:
        import jax

        return jax.process_index() if self.mode == "multiworker" else 0

    @property
    def is_chief(self) -> bool:
        return self.process_index == 0

    @property
    def shards_data(self) -> bool:
        return self.mode == "multiworker"

    def local_only(self) -> None:
        keras.distribution.set_distribution(None)

    def _gather(self, value: int) -> list[int]:
        import numpy as np
        from jax.experimental import multihost_utils

        gathered = multihost_utils.process_allgather(np.array([value], dtype=np.int64))
        return [int(v) for v in np.asarray(gathered).reshape(-1)]

    def _is_peer_error(self, e: BaseException) -> bool:
        text = f"{type(e).__name__} {e}".lower()
        return any(word in text for word in _PEER_WORDS)


_PEER_WORDS = ("unavailable", "reset", "deadline", "timed out", "heartbeat", "connection", "gloo")


def _reason(e: BaseException) -> str:
    """The line of an error message that says what happened to the peer."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    for line in lines:
        if any(word in line.lower() for word in _PEER_WORDS):
            return line[:300]
    return lines[0][:300] if lines else ""
