"""Helpers shared by the tests and the benchmarks (needs pytest; not needed to use the package).

`gradient` differentiates on whichever backend Keras runs; `run_python` runs code in
a fresh interpreter, the way a user's new process would see the package.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()

#: Whether TensorFlow is installed (tf.data, tfds and the TensorFlow backend need it).
HAS_TF = importlib.util.find_spec("tensorflow") is not None

#: Skips a test where TensorFlow is not installed.
requires_tf = pytest.mark.skipif(not HAS_TF, reason="needs TensorFlow installed (tf.data)")


def gradient(fn, x: np.ndarray) -> np.ndarray:
    """d sum(fn(x)) / dx, on whichever backend Keras runs."""
    x = np.asarray(x, dtype="float32")
    if BACKEND == "tensorflow":
        import tensorflow as tf

        v = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(v)
            out = tf.reduce_sum(fn(v))
        return tape.gradient(out, v).numpy()
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        return np.asarray(jax.grad(lambda v: jnp.sum(fn(v)))(jnp.asarray(x)))
    if BACKEND == "torch":
        import torch

        v = torch.tensor(x, requires_grad=True)
        fn(v).sum().backward()
        return v.grad.numpy()
    raise NotImplementedError(BACKEND)


def run_python(code: str, timeout: float = 300, env: dict | None = None) -> str:
    """Runs `code` in a fresh Python process (same backend); returns its stdout.

    Raises:
        AssertionError: If the process exits with a non-zero status (its stderr
            is in the message).
    """
    full_env = {**os.environ, "KERAS_BACKEND": BACKEND, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )
    if proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout


def run_script(path: str | os.PathLike, *args: str, timeout: float = 300) -> str:
    """Runs the Python file `path` as `python path args...` would, in a fresh process.

    The file's own directory comes first on `sys.path` (so it imports the modules
    beside it); same backend; returns its stdout.

    Raises:
        AssertionError: If the process exits with a non-zero status.
    """
    path = os.path.abspath(path)
    code = (
        "import runpy, sys\n"
        f"sys.argv = {[path, *args]!r}\n"
        f"sys.path.insert(0, {os.path.dirname(path)!r})\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    return run_python(code, timeout=timeout)
