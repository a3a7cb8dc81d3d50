"""A correction of Keras's TensorFlow trainer for tf.distribute strategies (private).

keras-team/keras#20585: `fit` under `MultiWorkerMirroredStrategy` fails twice
in Keras 3.15, and under `MirroredStrategy` when the first batch does not split
evenly across the replicas.

1. `TensorFlowTrainer._maybe_symbolic_build` all-reduces the first batch
   (images, labels) over the replicas only to read its shapes and dtypes; the
   all-reduce fails on integer data across workers, and under
   `MirroredStrategy` when the batch does not split evenly (e.g. 7 examples on
   2 replicas). The corrected version takes the first local replica's batch,
   which has the same dtypes and per-replica shapes.
2. `reduce_per_replica` reduces the metric results with
   `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars. The metric
   states are already summed across all replicas (mirrored variables with
   `aggregation="sum"`), so every replica holds the same scalar; the corrected
   version reduces scalars with `axis=None`.

`install()` first checks that the installed Keras is one this correction was
written for: the functions it replaces or calls exist with the parameters it
expects (`check_keras()`). When keras-team/keras#20585 is fixed upstream, this
module goes away.
"""

from __future__ import annotations

import keras

from keras_minent._keras_private import signature_problem
from keras_minent.errors import UnsupportedKerasError

#: The Keras versions this correction was written for and tested with.
SUPPORTED_KERAS = "3.15 (tested: 3.15.1)"

#: What the correction expects of `keras.src.backend.tensorflow.trainer`:
#: (owner, attribute) -> parameter names. Owner `None` is the module itself.
EXPECTED = {
    ("TensorFlowTrainer", "_maybe_symbolic_build"): ("self", "iterator", "data_batch"),
    (None, "reduce_per_replica"): ("values", "strategy", "reduction"),
    (None, "_collective_all_reduce_multi_worker"): ("strategy",),
}


def check_keras(tf_trainer=None) -> None:
    """Checks that `install()` applies to the installed Keras.

    Args:
        tf_trainer: The module to check (default:
            `keras.src.backend.tensorflow.trainer`).

    Raises:
        UnsupportedKerasError: If a function the correction replaces or calls is
            missing or has other parameters; the message names the Keras
            version found, the versions supported and what to do.
    """
    if tf_trainer is None:
        from keras.src.backend.tensorflow import trainer as tf_trainer
    problems = []
    for (owner, name), params in EXPECTED.items():
        where = getattr(tf_trainer, owner, None) if owner else tf_trainer
        qualified = f"{owner}.{name}" if owner else name
        problem = signature_problem(qualified, getattr(where, name, None), params)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise UnsupportedKerasError(
            f"keras_minent's correction of Keras's TensorFlow trainer (keras-team/keras#20585), "
            f"needed by --distribute gpus and multiworker on TensorFlow, was written for Keras "
            f"{SUPPORTED_KERAS} and does not apply to the installed Keras {keras.__version__}: "
            f"{'; '.join(problems)}. Install a supported Keras (pip install 'keras>=3.15,<3.16'), "
            "or train on one device (--distribute none) or with KERAS_BACKEND=jax; if "
            "keras-team/keras#20585 is fixed in this Keras, keras_minent/_keras_tf_trainer_fix.py "
            "can be removed."
        )


def install() -> None:
    """Installs the correction into Keras's TensorFlow trainer (once per process).

    Raises:
        UnsupportedKerasError: See `check_keras`.
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if getattr(tf_trainer, "_keras_minent_fixed", False):
        return
    check_keras(tf_trainer)
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
