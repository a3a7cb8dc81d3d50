"""Aggregate throughput of runs trained together (`--seed-parallel`) against one run alone.

One process, one device, side by side: for each member count N it trains N
VGG-5 members of the recipe (batch 100, augmentation, dropout, the three
losses in turn, each its own seed) as one joint program
(`keras_minent.training.joint`), and one member alone through the train
command's own path (`build_model`, `TrainingBatches`). Each configuration
runs `--epochs` short epochs of `--steps` batches with validation on
`--val-size` images; the first epoch (compilation) is dropped and the median
of the others reported. Synthetic uint8 images (speed does not depend on
pixel values).

Reported per N: aggregate training images/s (all members), its ratio to one
member alone, validation images/s, and the projected wall time of the paper's
comparison (3 losses x 10 seeds, 200 epochs of 114,400 training and 10,400
validation images) trained in groups of N.

    KERAS_BACKEND=jax python benchmarks/seed_parallel.py --members 1 10 30
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import keras  # noqa: E402
from common import emit, machine  # noqa: E402

from keras_minent import datasets  # noqa: E402
from keras_minent.training import TrainConfig, accelerator, build_model, joint  # noqa: E402
from keras_minent.training.recipe import steps_per_execution  # noqa: E402

LOSSES = ("ce", "min_ent", "mix_ent")
#: The paper's comparison: 3 losses x 10 seeds, 200 epochs of the official split.
RUNS, EPOCHS, FIT, VAL = 30, 200, 114_400, 10_400


class _Timer(keras.callbacks.Callback):
    """Wall time of each epoch's training steps and of its validation."""

    def __init__(self):
        super().__init__()
        self.train, self.val = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_test_begin(self, logs=None):
        # Waits for the epoch's last step (JAX dispatches asynchronously): reading a
        # weight blocks until it is computed.
        keras.ops.convert_to_numpy(self.model.trainable_variables[0])
        self.t1 = time.perf_counter()
        self.train.append(self.t1 - self.t0)

    def on_test_end(self, logs=None):
        self.val.append(time.perf_counter() - self.t1)


def _configs(n: int, batch: int) -> list[TrainConfig]:
    return [
        TrainConfig(output_dir="unused", loss=LOSSES[k % 3], seed=k, batch_size=batch, verbose=0)
        for k in range(n)
    ]


def measure(n: int, batch: int, steps: int, epochs: int, val_size: int, alone: bool) -> dict:
    """One configuration: N members together (or one member alone)."""
    device = accelerator()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch * steps, 28, 28, 1), dtype=np.uint8)
    y = rng.integers(0, 26, batch * steps).astype(np.int64)
    xv, yv = x[:val_size], y[:val_size]
    if val_size > len(x):
        xv = rng.integers(0, 256, (val_size, 28, 28, 1), dtype=np.uint8)
        yv = rng.integers(0, 26, val_size).astype(np.int64)
    configs = _configs(n, batch)
    timer = _Timer()
    if alone:
        keras.utils.set_random_seed(0)
        model = build_model(configs[0], device)
        train = datasets.TrainingBatches(x, y, batch, 0, epochs)
        val = datasets.EvaluationBatches(xv, yv, 1000)
        callbacks = [timer, train.epoch_callback()]
    else:
        networks = joint.build_members(configs, device)
        model = joint.compile_joint(networks, configs, device)
        names = [f"m{k}" for k in range(n)]
        parts = [datasets.TrainingBatches(x, y, batch, c.seed, epochs) for c in configs]
        train = joint.JointBatches(parts, names)
        val = joint.JointEvaluation(xv, yv, names)
        callbacks = [timer]
    model.fit(
        train,
        validation_data=val,
        epochs=epochs,
        callbacks=callbacks,
        shuffle=False,
        verbose=0,
    )
    train_s = statistics.median(timer.train[1:])
    val_s = statistics.median(timer.val[1:])
    members = 1 if alone else n
    train_ips = members * batch * steps / train_s
    val_ips = members * val_size / val_s
    # The comparison in groups of `members`: ceil(30 / members) groups, each 200 epochs.
    groups = math.ceil(RUNS / members)
    epoch_s = members * FIT / train_ips + members * VAL / val_ips
    return {
        "backend": keras.backend.backend(),
        "device": device["name"],
        "mode": "alone (train command path)" if alone else "together",
        "members": members,
        "batch": batch,
        "steps_per_execution": steps_per_execution(configs[0], device),
        "compile_s": round(timer.train[0] - train_s, 1),
        "train_images_per_s": round(train_ips, 1),
        "val_images_per_s": round(val_ips, 1),
        "projected_30x200_h": round(groups * EPOCHS * epoch_s / 3600, 2),
    }


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--members", nargs="+", type=int, default=[2, 4])
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--steps", type=int, default=20, help="batches per timed epoch")
    p.add_argument("--epochs", type=int, default=3, help="the first one is compilation")
    p.add_argument("--val-size", type=int, default=1000)
    p.add_argument("--json", default=None, help="append rows to this JSON-lines file")
    args = p.parse_args(argv)
    print(machine())
    rows = [measure(1, args.batch, args.steps, args.epochs, args.val_size, alone=True)]
    print(rows[-1], flush=True)
    for n in args.members:
        rows.append(measure(n, args.batch, args.steps, args.epochs, args.val_size, alone=False))
        print(rows[-1], flush=True)
    base = rows[0]["train_images_per_s"]
    for r in rows:
        r["vs_alone"] = round(r["train_images_per_s"] / base, 2)
    emit(
        rows,
        f"Seeds trained together: aggregate throughput ({keras.backend.backend()})",
        args.json,
    )
    return rows


if __name__ == "__main__":
    main()
