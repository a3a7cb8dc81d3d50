"""Helpers shared by the tests and the benchmarks (not needed to use the package).

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

try:  # the helpers work without pytest; only `requires_tf` needs it
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

BACKEND = keras.backend.backend()

#: Whether TensorFlow is installed (tf.data, tfds and the TensorFlow backend need it).
HAS_TF = importlib.util.find_spec("tensorflow") is not None

#: Skips a test where TensorFlow is not installed.
requires_tf = (
    pytest.mark.skipif(not HAS_TF, reason="needs TensorFlow installed (tf.data)")
    if pytest is not None
    else None
)


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


# --------------------------------------------------------------------------
# The float64 reference of the losses (tests/test_losses.py, benchmarks/loss_exactness.py)
# --------------------------------------------------------------------------

#: Classes and batch size of the reference cases.
REF_CLASSES = 7
REF_BATCH = 12


def reference_loss(kind, t, y_pred, from_logits, w_reg, w_ce, b_ce, b_reg, eps=1e-6, axis=-1):
    """float64 NumPy: per-example MIN-ENT (`kind="min_ent"`) or MIX-ENT (`"mix_ent"`).

    Written from the formulas of `docs/method.md`, independently of `keras_minent.losses`:
    `t` is the target distribution, `w_*` the weights, `b_*` the log bases.
    """
    y = np.moveaxis(np.asarray(y_pred, np.float64), axis, -1)
    t = np.moveaxis(np.asarray(t, np.float64), axis, -1)
    if from_logits:
        m = y.max(-1, keepdims=True)
        log_p = y - m - np.log(np.exp(y - m).sum(-1, keepdims=True))
        p = np.exp(log_p)
    else:  # as keras.losses.categorical_crossentropy: normalise, clip, log
        p = y / y.sum(-1, keepdims=True)
        log_p = np.log(np.clip(p, 1e-7, 1 - 1e-7))
    ce = -(t * log_p).sum(-1)
    if kind == "min_ent":
        reg = -(p * log_p).sum(-1)
    elif kind == "mix_ent":
        reg = -(p * np.log(t + eps)).sum(-1)
    else:
        raise ValueError(f"kind must be 'min_ent' or 'mix_ent', not {kind!r}")
    return w_ce * ce / np.log(b_ce) + w_reg * reg / np.log(b_reg)


def reference_data(seed=0, b=REF_BATCH, k=REF_CLASSES, from_logits=True):
    """`(labels, y_pred)`: random class ids and float32 logits (or probabilities)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, size=b)
    logits = rng.normal(0, 3, size=(b, k)).astype("float32")
    if from_logits:
        return labels, logits
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return labels, probs.astype("float32")


def reference_targets(labels, fmt, k=REF_CLASSES, seed=1):
    """`(y_true, distribution)` for `fmt` in "int", "int_col", "onehot", "soft"."""
    onehot = np.eye(k, dtype="float32")[labels]
    if fmt == "int":
        return labels, onehot
    if fmt == "int_col":
        return labels[:, None], onehot
    if fmt == "onehot":
        return onehot, onehot
    soft = np.random.default_rng(seed).dirichlet(np.ones(k), size=len(labels)).astype("float32")
    return soft, soft


def reference_case(kind, from_logits, fmt, smoothing, bases, seed=0):
    """Per-example loss and its float64 reference for one case of the exactness sweep.

    The loss is `keras_minent.losses.get(kind, 0.37, ce_weight=0.8, ...)`.

    Returns:
        `(got, want, y_true, y_pred, get_kwargs)`: `keras_minent.losses.get(kind,
        **get_kwargs)` builds the loss (with `reduction=None`).
    """
    from keras_minent import losses

    labels, y_pred = reference_data(seed, from_logits=from_logits)
    y_true, dist = reference_targets(labels, fmt)
    t = dist * (1 - smoothing) + smoothing / REF_CLASSES
    kwargs = {
        "weight": 0.37,
        "ce_weight": 0.8,
        "ce_log_base": bases[0],
        "reg_log_base": bases[1],
        "from_logits": from_logits,
        "label_smoothing": smoothing,
        "reduction": None,
    }
    got = keras.ops.convert_to_numpy(losses.get(kind, **kwargs)(y_true, y_pred))
    want = reference_loss(kind, t, y_pred, from_logits, 0.37, 0.8, *bases)
    return got, want, y_true, y_pred, kwargs


def rel_err(a, b) -> float:
    """Largest relative error of `a` against `b` (absolute below |b| = 1e-2)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-2)))


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


def assert_steps_match(multi, single) -> None:
    """Two distributed per-step losses equal one device's (tests/workers/steps.py).

    Step 1 (equal weights) to 1e-5. Step 2 follows one all-reduced update: its
    float32 sums run in another order (oneDNN/AMX kernels on some CPUs give
    1.5e-4 there), so 1e-3; a wrong update (gradients summed instead of
    averaged, a replica's half missing) moves it by far more, which the last
    check makes sure of.
    """
    multi, single = np.asarray(multi), np.asarray(single)
    assert multi.shape == single.shape == (2,), (multi, single)
    np.testing.assert_allclose(multi[0], single[0], rtol=1e-5)
    np.testing.assert_allclose(multi[1], single[1], rtol=1e-3)
    assert abs(single[1] - single[0]) > 10 * 1e-3 * abs(single[1]), single
