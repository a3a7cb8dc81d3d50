"""One worker of a two-process job: per-step losses equal one device (run by test_multiworker).

The cluster comes from the environment (`TF_CONFIG` or `KERAS_DISTRIBUTION_*`).
Prints one line `RESULT {json}`: this process's index, the number of replicas,
and the (losses, examples seen) of one device and of the cluster.
"""

from __future__ import annotations

import contextlib
import json

import keras
import numpy as np
from steps import BATCH, StepLosses, data

import keras_minent
from keras_minent.distribute import TrainingCluster


class Seen(keras.metrics.Metric):
    """Examples seen, summed over all replicas: tells a split batch from a copied one."""

    def __init__(self, name="seen", **kw):
        super().__init__(name=name, **kw)
        self.n = self.add_variable((), initializer="zeros", name="n")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.n.assign_add(keras.ops.cast(keras.ops.shape(y_true)[0], self.n.dtype))

    def result(self):
        return keras.ops.convert_to_tensor(self.n)


def main() -> None:
    cluster = TrainingCluster.create("multiworker")  # before any other backend work
    import tensorflow as tf

    x, y, w = data(16)
    keras.utils.set_random_seed(0)
    weights = keras_minent.vgg5(dropout=0.0).get_weights()

    def run(scope, synchronized_bn, dataset):
        with scope:
            model = keras_minent.vgg5(dropout=0.0, synchronized_bn=synchronized_bn)
            model.set_weights(weights)
            model.compile(
                keras.optimizers.SGD(0.01),
                keras_minent.MixEntLoss(0.3, from_logits=True),
                metrics=[Seen()],
            )
        cb = StepLosses()
        h = model.fit(dataset, epochs=1, verbose=0, callbacks=[cb], shuffle=False)
        return cb.seen, h.history["seen"][-1]

    def whole():
        return tf.data.Dataset.from_tensor_slices((x, y, w)).batch(BATCH)

    if keras.backend.backend() == "tensorflow":
        single = run(contextlib.nullcontext(), False, whole())
        multi = run(cluster.scope(), True, whole())
    else:
        keras.distribution.set_distribution(None)
        single = run(contextlib.nullcontext(), False, whole())
        cluster = TrainingCluster.create("multiworker")
        # This process's part of every global batch (what training_dataset(shard=...) yields).
        n, i = cluster.num_processes, cluster.process_index
        part = BATCH // n
        idx = np.concatenate(
            [np.arange(b + i * part, b + (i + 1) * part) for b in range(0, len(x), BATCH)]
        )
        local = tf.data.Dataset.from_tensor_slices((x[idx], y[idx], w[idx])).batch(part)
        multi = run(contextlib.nullcontext(), False, local)
    result = {
        "index": cluster.process_index,
        "replicas": cluster.num_replicas,
        "single": single,
        "multi": multi,
    }
    print("RESULT", json.dumps(result))


if __name__ == "__main__":
    main()
