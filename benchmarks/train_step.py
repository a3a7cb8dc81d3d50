"""VGG-5 training throughput (images/s) of keras-minent, per loss and precision.

Runs on the backend of KERAS_BACKEND; compiled as Keras does by default
(XLA on JAX, XLA on TF with a GPU, eager on torch). Synthetic uint8 images
(throughput does not depend on pixel values). Each configuration trains
`--epochs` short epochs; the first (compilation) is dropped and the median of
the others reported.

    KERAS_BACKEND=jax python benchmarks/train_step.py --precisions float32 mixed_bfloat16
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import keras  # noqa: E402
from common import emit, machine  # noqa: E402

import keras_minent  # noqa: E402

#: Multiply-accumulates of one VGG-5 forward pass on a 28x28 image; x2 FLOP, x3 for training.
FORWARD_MACS = (
    28 * 28 * 9 * (1 * 64 + 64 * 64)
    + 14 * 14 * 9 * (64 * 128 + 128 * 128)
    + 7 * 7 * 9 * (128 * 256 + 2 * 256 * 256)
    + 3 * 3 * 9 * (3 * 256 * 256)
    + 256 * 512
    + 512 * 26
)
TRAIN_FLOP_PER_IMAGE = 6 * FORWARD_MACS


def make_loss(name: str):
    if name == "ce":  # the baseline: Keras's own cross entropy
        return keras.losses.CategoricalCrossentropy(from_logits=True)
    return keras_minent.losses.get(name, paper_settings=True, from_logits=True)


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)


def measure(loss, precision, batch, steps, epochs, augment, spe) -> dict:
    keras.config.set_dtype_policy(precision)
    keras.utils.set_random_seed(0)
    model = keras_minent.vgg5(augment=augment, seed=0)
    model.compile(
        keras.optimizers.Adam(0.005),
        make_loss(loss),
        steps_per_execution=spe,
    )
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(batch * steps, 28, 28, 1), dtype=np.uint8)
    y = np.eye(26, dtype="float32")[rng.integers(0, 26, size=batch * steps)]  # one-hot
    timer = EpochTimer()
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=False, callbacks=[timer])
    per_epoch = statistics.median(timer.times[1:])
    ips = batch * steps / per_epoch
    keras.config.set_dtype_policy("float32")
    return {
        "backend": keras.backend.backend(),
        "precision": precision,
        "loss": loss,
        "batch": batch,
        "augment": augment,
        "spe": spe,
        "jit": bool(model.jit_compile),
        "compile_s": round(timer.times[0] - per_epoch, 1),
        "images_per_s": round(ips, 1),
        "tflops": round(ips * TRAIN_FLOP_PER_IMAGE / 1e12, 2),
    }


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--precisions", nargs="+", default=["float32"])
    p.add_argument("--losses", nargs="+", default=["ce", "min_ent", "mix_ent"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[100])
    p.add_argument("--steps", type=int, default=50, help="steps per timed epoch")
    p.add_argument("--epochs", type=int, default=3, help="first one is compilation")
    p.add_argument("--augment", type=int, nargs="+", default=[1], help="1: with augmentation")
    p.add_argument("--steps-per-execution", type=int, nargs="+", default=[1])
    p.add_argument("--json", default=None, help="append rows to this JSON-lines file")
    args = p.parse_args(argv)
    print(machine())
    rows = []
    for precision in args.precisions:
        for batch in args.batch_sizes:
            for augment in args.augment:
                for spe in args.steps_per_execution:
                    for loss in args.losses:
                        rows.append(
                            measure(
                                loss, precision, batch, args.steps, args.epochs, bool(augment), spe
                            )
                        )
                        print(rows[-1], flush=True)
    for r in rows:  # ratio of step time to cross entropy's, same settings
        base = [
            b
            for b in rows
            if b["loss"] == "ce"
            and all(b[k] == r[k] for k in ("precision", "batch", "augment", "spe"))
        ]
        r["step_time_vs_ce"] = (
            round(base[0]["images_per_s"] / r["images_per_s"], 3) if base else None
        )
    emit(rows, f"VGG-5 training throughput ({keras.backend.backend()})", args.json)
    return rows


if __name__ == "__main__":
    main()
