"""JAX `DataParallel` on two host devices equals one device (run by test_distribute).

Per-step MIX-ENT losses with sample weights (some zero). Prints "OK" at the end.
"""

from __future__ import annotations

import os


def main() -> None:
    # Two CPU devices: set before JAX starts, first thing in the process.
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax
    import keras
    import numpy as np
    from steps import BATCH, STEPS, StepLosses, data

    import keras_minent
    from keras_minent.distribute import TrainingCluster

    assert len(jax.devices()) == 2, jax.devices()
    x, y, w = data(16)
    keras.utils.set_random_seed(0)
    weights = keras_minent.vgg5(dropout=0.0).get_weights()

    def run():
        model = keras_minent.vgg5(dropout=0.0)
        model.set_weights(weights)
        model.compile(keras.optimizers.SGD(0.01), keras_minent.MixEntLoss(0.3, from_logits=True))
        cb = StepLosses()
        model.fit(
            x,
            y,
            sample_weight=w,
            batch_size=BATCH,
            epochs=1,
            verbose=0,
            shuffle=False,
            callbacks=[cb],
        )
        return cb.seen

    single = run()
    cluster = TrainingCluster.create("gpus")
    assert cluster.num_replicas == 2
    multi = run()
    print("SINGLE", single)
    print("MULTI", multi)
    assert len(single) == STEPS
    np.testing.assert_allclose(multi, single, rtol=1e-5)
    print("OK")


if __name__ == "__main__":
    main()
