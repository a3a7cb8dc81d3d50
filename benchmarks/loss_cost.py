"""Forward + backward cost of MinEntLoss / MixEntLoss against Keras's cross entropy.

Logits of shape (B, 26) for B in 100, 1024, 8192; compiled (jax.jit,
tf.function(jit_compile=True), torch.compile) and eager; the backend of
KERAS_BACKEND. Prints the median time and the ratio to cross entropy.
Our losses are built with `keras_minent.losses.get` (the paper's settings).

With `--against REV`, the losses of `keras_minent.losses` at git revision
REV are timed in the same run, interleaved with the current ones (rows
`min_ent@REV`, `mix_ent@REV`), e.g. to compare two formulations on a shared
machine:

    KERAS_BACKEND=jax python benchmarks/loss_cost.py
    KERAS_BACKEND=tensorflow python benchmarks/loss_cost.py --modes compiled --against d7e057a
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import types

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import keras  # noqa: E402
from common import emit, machine, median_time  # noqa: E402

import keras_minent  # noqa: E402

LOSSES = {
    "ce": lambda: keras.losses.CategoricalCrossentropy(from_logits=True),
    "min_ent": lambda: keras_minent.losses.get("min_ent", paper_settings=True, from_logits=True),
    "mix_ent": lambda: keras_minent.losses.get("mix_ent", paper_settings=True, from_logits=True),
}


def losses_at(rev: str) -> dict:
    """`min_ent@REV` and `mix_ent@REV`: the losses of `keras_minent.losses` at `rev`.

    The old code is loaded on its own, without registering its classes with
    Keras again (their names are taken by the current ones): the module
    `keras_minent/losses.py`, or, from the revision that split it, the package
    `keras_minent/losses/` (loaded under another name). Either uses the current
    `keras_minent._loss_utils`.
    """
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        ).stdout

    def unregistered(source: str) -> str:
        for decorator in (
            "@keras.saving.register_keras_serializable(package=PACKAGE)\n",
            "@_register\n",
        ):
            source = source.replace(decorator, "")
        return source

    name = "losses_at_" + re.sub(r"\W", "_", rev)
    paths = git("ls-tree", "--name-only", rev, "keras_minent/").split()
    if "keras_minent/losses.py" in paths:
        source = unregistered(git("show", f"{rev}:keras_minent/losses.py"))
        module = types.ModuleType(name)
        exec(compile(source, f"{rev}:keras_minent/losses.py", "exec"), module.__dict__)
    else:
        files = git("ls-tree", "--name-only", rev, "keras_minent/losses/").split()
        with tempfile.TemporaryDirectory() as tmp:
            os.mkdir(os.path.join(tmp, name))
            for path in files:
                if path.endswith(".py"):
                    source = unregistered(git("show", f"{rev}:{path}"))
                    source = source.replace("keras_minent.losses", name)
                    with open(os.path.join(tmp, name, os.path.basename(path)), "w") as f:
                        f.write(source)
            sys.path.insert(0, tmp)
            try:
                module = importlib.import_module(name)
            finally:
                sys.path.remove(tmp)
    return {
        f"{loss}@{rev}": (lambda n=loss: module.get(n, paper_settings=True, from_logits=True))
        for loss in ("min_ent", "mix_ent")
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
    p.add_argument("--against", default=None, help="git revision whose losses to time beside ours")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="time every loss this many times, interleaved; the median of the rounds counts",
    )
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    print(machine())
    losses = dict(LOSSES)
    if args.against:
        losses.update(losses_at(args.against))
    rows = []
    rng = np.random.default_rng(0)
    for mode in args.modes:
        for b in args.batch_sizes:
            labels = rng.integers(0, 26, size=b)
            y = keras.ops.convert_to_tensor(
                np.eye(26, dtype="float32")[labels] if args.one_hot else labels
            )
            z = keras.ops.convert_to_tensor(rng.normal(size=(b, 26)).astype("float32"))
            fns = {}
            for name, make in losses.items():
                loss = make()
                if name == "ce" and not args.one_hot:
                    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                fn, block = value_and_grad(loss, mode == "compiled")
                fns[name] = lambda f=fn, b=block, y=y, z=z: b(f(y, z))
            samples = {name: [] for name in fns}
            for _ in range(args.rounds):
                for name, run in fns.items():
                    samples[name].append(median_time(run, args.repeats, warmup=3))
            times = {name: statistics.median(ts) for name, ts in samples.items()}
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
