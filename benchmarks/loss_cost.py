"""Forward + backward cost of MinEntLoss / MixEntLoss against Keras's cross entropy.

Logits of shape (B, 26) for B in 100, 1024, 8192; compiled (jax.jit,
tf.function(jit_compile=True), torch.compile) and eager; the backend of
KERAS_BACKEND. Prints the median time and the ratio to cross entropy.

    KERAS_BACKEND=jax python benchmarks/loss_cost.py
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import keras  # noqa: E402
from common import emit, machine, median_time  # noqa: E402

import keras_minent  # noqa: E402

LOSSES = {
    "ce": lambda: keras.losses.CategoricalCrossentropy(from_logits=True),
    "min_ent": lambda: keras_minent.MinEntLoss.from_paper(from_logits=True),
    "mix_ent": lambda: keras_minent.MixEntLoss.from_paper(from_logits=True),
}


def value_and_grad(loss, compiled: bool):
    """A function (labels, logits) -> (loss, dloss/dlogits) on the current backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        fn = jax.value_and_grad(lambda z, y: loss(y, z))
        fn = jax.jit(fn) if compiled else fn
        return lambda y, z: fn(z, y), lambda out: jax.block_until_ready(out)
    if backend == "tensorflow":
        import tensorflow as tf

        def step(y, z):
            with tf.GradientTape() as tape:
                tape.watch(z)
                value = loss(y, z)
            return value, tape.gradient(value, z)

        return (tf.function(step, jit_compile=True) if compiled else step), lambda out: [
            o.numpy() for o in out
        ]
    import torch

    def step(y, z):
        z = z.detach().requires_grad_(True)
        value = loss(y, z)
        (g,) = torch.autograd.grad(value, z)
        return value, g

    fn = torch.compile(step) if compiled else step
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    return fn, lambda out: sync()


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[100, 1024, 8192])
    p.add_argument("--modes", nargs="+", default=["compiled", "eager"])
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument(
        "--one-hot",
        type=int,
        default=1,
        help="1: one-hot targets for all (Keras CE needs them); 0: integer labels, "
        "CE baseline then SparseCategoricalCrossentropy",
    )
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    print(machine())
    rows = []
    rng = np.random.default_rng(0)
    for mode in args.modes:
        for b in args.batch_sizes:
            labels = rng.integers(0, 26, size=b)
            y = keras.ops.convert_to_tensor(
                np.eye(26, dtype="float32")[labels] if args.one_hot else labels
            )
            z = keras.ops.convert_to_tensor(rng.normal(size=(b, 26)).astype("float32"))
            times = {}
            for name, make in LOSSES.items():
                loss = make()
                if name == "ce" and not args.one_hot:
                    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                fn, block = value_and_grad(loss, mode == "compiled")
                times[name] = median_time(
                    lambda f=fn, b=block, y=y, z=z: b(f(y, z)), args.repeats, warmup=3
                )
            for name, t in times.items():
                rows.append(
                    {
                        "backend": keras.backend.backend(),
                        "mode": mode,
                        "batch": b,
                        "loss": name,
                        "labels": "one-hot" if args.one_hot else "int",
                        "us": round(t * 1e6, 1),
                        "vs_ce": round(t / times["ce"], 3),
                    }
                )
    emit(rows, f"loss forward+backward ({keras.backend.backend()})", args.json)
    return rows


if __name__ == "__main__":
    main()
