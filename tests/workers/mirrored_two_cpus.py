"""TensorFlow `MirroredStrategy` on two logical CPUs equals one device (run by test_distribute).

Per-step losses of MIN-ENT and MIX-ENT (with sample weights, some zero), and
the evaluation of a batch of 7 split 4 + 3 (Keras 3.15 alone fails on it;
corrected by `keras_minent._keras_tf_trainer_fix`). Prints "OK" at the end.
"""

from __future__ import annotations


def main() -> None:
    import tensorflow as tf

    # Logical CPUs must be made before TensorFlow starts: first thing in the process.
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
    import keras
    import numpy as np
    from steps import BATCH, STEPS, StepLosses, data

    import keras_minent
    from keras_minent.distribute import TrainingCluster
    from keras_minent.testing import assert_steps_match

    def step_losses(cluster, weights, loss):
        x, y, w = data()
        with cluster.scope():
            model = keras_minent.vgg5(dropout=0.0, synchronized_bn=cluster.synchronized_bn)
            model.set_weights(weights)
            model.compile(keras.optimizers.SGD(0.01), loss)
        ds = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(BATCH)
        cb = StepLosses()
        model.fit(ds, epochs=1, verbose=0, callbacks=[cb], shuffle=False)
        return np.array(cb.seen)

    keras.utils.set_random_seed(0)
    weights = keras_minent.vgg5(dropout=0.0).get_weights()
    logical = [d.name for d in tf.config.list_logical_devices("CPU")]
    single_device = TrainingCluster.create("none")
    mirrored = None
    for cls in (keras_minent.MinEntLoss, keras_minent.MixEntLoss):
        single = step_losses(single_device, weights, cls(0.3, from_logits=True))
        mirrored = TrainingCluster.create("gpus", tf_devices=logical[:2])
        assert mirrored.num_replicas == 2
        multi = step_losses(mirrored, weights, cls(0.3, from_logits=True))
        print(cls.__name__, single, multi)
        assert len(single) == STEPS
        assert_steps_match(multi, single)

    # A batch of 7 on 2 replicas (4 + 3): Keras 3.15 alone fails on it; corrected here.
    x, y, _ = data(7)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(7)
    evaluated = []
    for cluster in (single_device, mirrored):
        with cluster.scope():
            model = keras_minent.vgg5(dropout=0.0, synchronized_bn=cluster.synchronized_bn)
            model.set_weights(weights)
            model.compile("sgd", keras_minent.MinEntLoss(0.3, from_logits=True))
        evaluated.append(model.evaluate(ds, verbose=0))
    print("uneven", evaluated)
    np.testing.assert_allclose(evaluated[1], evaluated[0], rtol=1e-5)
    print("OK")


if __name__ == "__main__":
    main()
