"""Shared helpers: the backend under test and a backend-independent gradient."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()


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
    """Runs `code` in a fresh Python process (same backend); returns stdout."""
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


HAS_TF = importlib.util.find_spec("tensorflow") is not None
requires_tf = pytest.mark.skipif(not HAS_TF, reason="needs TensorFlow installed (tf.data)")


@pytest.fixture(autouse=True)
def _reset_policy():
    yield
    keras.config.set_dtype_policy("float32")
