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

Keras 3.15's TensorFlow trainer fails under `MultiWorkerMirroredStrategy`
(keras-team/keras#20585), and under `MirroredStrategy` when the first batch
does not split evenly across replicas; on TensorFlow, `Distribution`
therefore installs `_fix_keras_tf_trainer`, two narrow corrections of that
trainer, checked against the Keras version.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os

import keras

MODES = ("none", "gpus", "multiworker")

#: Seconds after which a collective operation of a multi-worker TensorFlow job
#: gives up (0: never). A dead or unreachable peer is found without it (a reset
#: connection, or TensorFlow's health check); it catches a peer that hangs
#: while alive, and must exceed the longest wait, e.g. the other workers
#: waiting while the chief downloads and prepares the data. Set it with the
#: environment variable `KERAS_MINENT_COLLECTIVE_TIMEOUT`.
DEFAULT_COLLECTIVE_TIMEOUT = 0.0

#: Exit status of the training command when a multi-worker job lost a peer:
#: restart every worker with the same command; they resume after the last
#: finished epoch (`EX_TEMPFAIL` of sysexits.h).
EXIT_PEER_LOST = 75

JAX_ENV = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)


class PeerLostError(RuntimeError):
    """A worker of a multi-worker job failed or became unreachable."""


def _check(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"Unknown distribution mode {mode!r}; expected one of {MODES}.")
    if mode != "none" and keras.backend.backend() not in ("tensorflow", "jax"):
        raise ValueError(
            f"Distribution mode {mode!r} needs the TensorFlow or JAX backend "
            f"(KERAS_BACKEND={keras.backend.backend()})."
        )


def _check_tf_config() -> None:
    """Validates the cluster of a multi-worker TensorFlow job (`TF_CONFIG`)."""
    example = (
        'TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
        '"task": {"type": "worker", "index": 0}}\''
    )
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "--distribute multiworker on TensorFlow reads the cluster from the TF_CONFIG "
            f"environment variable, which is not set. Set it on every worker, e.g. {example} "
            "(index 1 on the second machine)."
        )
    try:
        config = json.loads(raw)
        workers = list(config["cluster"]["worker"])
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"TF_CONFIG is not a valid cluster description ({e!r}); expected e.g. {example}."
        ) from None
    if task.get("type") not in ("worker", "chief"):
        raise ValueError(f"TF_CONFIG task type must be worker or chief, got {task.get('type')!r}.")
    size = len(config["cluster"].get(task["type"], []))
    if not 0 <= index < size:
        raise ValueError(f"TF_CONFIG task index {index} is outside the {size} {task['type']}s.")
    if not workers:
        raise ValueError("TF_CONFIG names no workers.")


def _collective_timeout() -> float:
    raw = os.environ.get("KERAS_MINENT_COLLECTIVE_TIMEOUT", str(DEFAULT_COLLECTIVE_TIMEOUT))
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ValueError(
            f"KERAS_MINENT_COLLECTIVE_TIMEOUT must be a number of seconds >= 0, got {raw!r}."
        )
    return value


@functools.cache  # TensorFlow sets up collectives once per process
def _multiworker_strategy():
    """The process's `MultiWorkerMirroredStrategy` (created once; later runs reuse it)."""
    import tensorflow as tf

    _check_tf_config()
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=_collective_timeout() or None
    )
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    _fix_keras_tf_trainer()
    return strategy


def _fix_keras_tf_trainer() -> None:
    """Corrects Keras 3.15's TensorFlow trainer for tf.distribute strategies.

    keras-team/keras#20585: `fit` under `MultiWorkerMirroredStrategy` fails twice.

    1. `_maybe_symbolic_build` all-reduces the first batch (images, labels)
       over the replicas only to read its shapes and dtypes; the all-reduce
       fails on integer data across workers, and under `MirroredStrategy`
       when the batch does not split evenly (e.g. 7 examples on 2 replicas).
       The corrected version takes the first local replica's batch, which
       has the same dtypes and per-replica shapes.
    2. `reduce_per_replica` reduces the metric results with
       `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars. The
       metric states are already summed across all replicas (mirrored
       variables with `aggregation="sum"`), so every replica holds the same
       scalar; the corrected version reduces scalars with `axis=None`.

    Raises:
        RuntimeError: If the installed Keras no longer has the functions
            corrected here (then check whether keras-team/keras#20585 is fixed
            and remove this function).
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if getattr(tf_trainer, "_keras_minent_fixed", False):
        return
    needed = ("reduce_per_replica", "_collective_all_reduce_multi_worker", "TensorFlowTrainer")
    if not all(hasattr(tf_trainer, n) for n in needed) or not hasattr(
        tf_trainer.TensorFlowTrainer, "_maybe_symbolic_build"
    ):
        raise RuntimeError(
            f"Keras {keras.__version__} changed its TensorFlow trainer; keras_minent's "
            "multi-worker correction (keras-team/keras#20585) does not apply. Check whether "
            "the issue is fixed upstream, or use Keras 3.15."
        )
    original_reduce = tf_trainer.reduce_per_replica

    def first_local(batch, strategy):
        return tf.nest.map_structure(
            lambda v: (
                strategy.experimental_local_results(v)[0]
                if isinstance(v, tf.distribute.DistributedValues)
                else v
            ),
            batch,
        )

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = first_local(next(it), self.distribute_strategy)
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        multi_worker = tf_trainer._collective_all_reduce_multi_worker(strategy)
        if not (multi_worker and reduction in ("auto", "mean")):
            return original_reduce(values, strategy, reduction)

        def reduce(v):
            if getattr(v, "shape", None) is not None and v.shape.rank == 0:
                if not isinstance(v, tf.distribute.DistributedValues):
                    v = tf.identity(v)  # e.g. a metric returning its variable
                return strategy.reduce("MEAN", v, axis=None)
            return original_reduce(v, strategy, reduction)

        return tf.nest.map_structure(reduce, values)

    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    tf_trainer.reduce_per_replica = reduce_per_replica
    tf_trainer._keras_minent_fixed = True


def _jax_initialize() -> None:
    """`jax.distributed` from the KERAS_DISTRIBUTION_* variables (CPU: gloo collectives)."""
    missing = [name for name in JAX_ENV if not os.environ.get(name)]
    if missing:
        raise ValueError(
            "--distribute multiworker on JAX reads the cluster from "
            f"{', '.join(JAX_ENV)}; not set: {', '.join(missing)}. On every process set e.g. "
            "KERAS_DISTRIBUTION_JOB_ADDRESSES=host0:1234,host1:1234 "
            "KERAS_DISTRIBUTION_NUM_PROCESSES=2 KERAS_DISTRIBUTION_PROCESS_ID=0 (1 on the "
            "second machine)."
        )
    import jax

    if jax.distributed.is_initialized():
        return
    # Cross-process collectives on CPU devices need gloo (XLA's default: none);
    # the setting does not affect GPUs.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize()


class Distribution:
    """A configured distribution: `scope()` for building and compiling the model.

    Args:
        mode: One of `MODES`.
        tf_devices: TensorFlow only: devices for `"gpus"` (default: all GPUs,
            else the CPU); e.g. two logical CPUs in tests.

    In `"multiworker"` mode every process runs the same program. On JAX each
    process feeds its own part of every global batch (see `shards_data`;
    `datasets.training_dataset(..., shard=(dist.process_index,
    dist.num_processes))`) and must join every `model.save` (see
    `collective_saves`); on TensorFlow the strategy splits the batches itself.

    Raises:
        ValueError: For an unknown mode, an unsupported backend, or a
            `"multiworker"` cluster that is not described in the environment.

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
                self.strategy = _multiworker_strategy()
            else:
                self.strategy = tf.distribute.MirroredStrategy(devices=tf_devices)
                _fix_keras_tf_trainer()
        else:
            if mode == "multiworker":
                _jax_initialize()
            keras.distribution.set_distribution(
                keras.distribution.DataParallel(auto_shard_dataset=False)
            )

    @property
    def num_replicas(self) -> int:
        """Number of model replicas over all processes."""
        if self.strategy is not None:
            return int(self.strategy.num_replicas_in_sync)
        dist = keras.distribution.distribution() if self.mode != "none" else None
        if dist is not None:
            return int(dist.device_mesh.devices.size)
        return 1

    @property
    def num_processes(self) -> int:
        """Number of processes (workers) of the job."""
        if self.mode != "multiworker":
            return 1
        if self.strategy is not None:
            cluster = self.strategy.cluster_resolver.cluster_spec().as_dict()
            return len(cluster.get("chief", [])) + len(cluster.get("worker", []))
        import jax

        return jax.process_count()

    @property
    def process_index(self) -> int:
        """This process's position among `num_processes` (0: the chief)."""
        if self.mode != "multiworker":
            return 0
        if self.strategy is not None:
            resolver = self.strategy.cluster_resolver
            if resolver.task_type == "chief":
                return 0
            has_chief = "chief" in resolver.cluster_spec().as_dict()
            return int(resolver.task_id) + int(has_chief)
        import jax

        return jax.process_index()

    @property
    def synchronized_bn(self) -> bool:
        """Whether BatchNorm must synchronize statistics (TensorFlow replicas)."""
        return self.strategy is not None

    @property
    def shards_data(self) -> bool:
        """Whether each process must feed only its part of every global batch.

        True for multi-process JAX: keras_minent feeds Keras's `DataParallel`
        process-local data (`auto_shard_dataset=False`), so that evaluation
        can feed every process the whole validation set instead.
        """
        return self.mode == "multiworker" and self.strategy is None

    @property
    def collective_saves(self) -> bool:
        """Whether saving a model is a collective all processes must join (multi-process JAX)."""
        return self.shards_data

    def scope(self):
        """Context in which to build, compile and load models."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    @property
    def is_chief(self) -> bool:
        """Whether this process writes checkpoints and results."""
        if self.strategy is not None:
            return bool(self.strategy.extended.should_checkpoint)
        if self.mode == "multiworker":
            import jax

            return jax.process_index() == 0
        return True

    def all_values(self, value: int) -> list[int]:
        """`value` of every process, in process order (a collective: all must call it)."""
        if self.mode != "multiworker":
            return [int(value)]
        if self.strategy is not None:
            import tensorflow as tf

            n, i = self.num_processes, self.process_index
            local_replicas = len(self.strategy.extended.worker_devices)

            def local(ctx):
                # One entry per process: only its first local replica contributes.
                first = ctx.replica_id_in_sync_group % local_replicas == 0
                return tf.one_hot(i, n, dtype=tf.int64) * (int(value) if first else 0)

            per_replica = self.strategy.experimental_distribute_values_from_function(local)
            total = self.strategy.reduce("SUM", per_replica, axis=None)
            return [int(v) for v in total.numpy()]
        import numpy as np
        from jax.experimental import multihost_utils

        gathered = multihost_utils.process_allgather(np.array([int(value)], dtype=np.int64))
        return [int(v) for v in np.asarray(gathered).reshape(-1)]

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
            if not _is_peer_error(e):
                raise
            raise PeerLostError(
                f"A worker of this {self.num_processes}-process job was lost "
                f"({type(e).__name__}: {_reason(e)}). "
                "Restart every worker with the same command: they resume after the last "
                "finished epoch."
            ) from e

    def local_only(self) -> None:
        """After training: later models run on this process's devices alone."""
        if self.strategy is None and self.mode != "none":
            keras.distribution.set_distribution(None)


_PEER_WORDS = ("unavailable", "reset", "deadline", "timed out", "heartbeat", "connection", "gloo")


def _reason(e: BaseException) -> str:
    """The line of an error message that says what happened to the peer."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    for line in lines:
        if any(word in line.lower() for word in _PEER_WORDS):
            return line[:300]
    return lines[0][:300] if lines else ""


def _is_peer_error(e: BaseException) -> bool:
    if keras.backend.backend() == "tensorflow":
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
    text = f"{type(e).__name__} {e}".lower()
    return any(word in text for word in _PEER_WORDS)
