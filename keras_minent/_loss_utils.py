"""Private helpers of `keras_minent.losses` and `keras_minent.metrics`.

Argument checks, reading targets (class ids or distributions) and the float32
log-probabilities both modules compute from. Not a public API.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import keras
import numpy as np
from keras import ops

PACKAGE = "keras_minent"

_HALF_DTYPES = ("float16", "bfloat16")


# --------------------------------------------------------------------------
# Argument validation
# --------------------------------------------------------------------------


def check_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"Argument `{name}` must be a real number. Received: {name}={value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"Argument `{name}` must be finite. Received: {name}={value}")
    return value


def check_weight(name: str, value: Any) -> float:
    value = check_real(name, value)
    if value < 0:
        raise ValueError(
            f"Argument `{name}` must be >= 0 (it weights a non-negative term; "
            f"a negative weight would reward the opposite). Received: {name}={value}"
        )
    return value


def check_log_base(name: str, value: Any) -> float:
    value = check_real(name, value)
    if value <= 1:
        raise ValueError(
            f"Argument `{name}` must be > 1 (it is the base of a logarithm: a base "
            "in (0, 1) has a negative log, which flips the sign of the term and "
            "rewards the opposite, as a negative weight would; use math.e for the "
            f"natural log). Received: {name}={value}"
        )
    return value


def check_epsilon(value: Any) -> float:
    value = check_real("epsilon", value)
    if value <= 0:
        raise ValueError(
            "Argument `epsilon` must be > 0: with a one-hot target, "
            f"log(0 + epsilon) must be finite. Received: epsilon={value}"
        )
    return value


def check_label_smoothing(value: Any) -> float:
    value = check_real("label_smoothing", value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f"Argument `label_smoothing` must be in [0, 1]. Received: label_smoothing={value}"
        )
    return value


def check_axis(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"Argument `axis` must be an integer. Received: axis={value!r}")
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"Argument `{name}` must be True or False. Received: {name}={value!r}")
    return bool(value)


def check_not_both_zero(ce_weight: float, reg_name: str, reg_weight: float) -> None:
    if ce_weight == 0 and reg_weight == 0:
        raise ValueError(
            f"`ce_weight` and `{reg_name}` are both 0, so the loss would "
            "be identically 0. Set at least one of them > 0."
        )


# --------------------------------------------------------------------------
# Target handling
# --------------------------------------------------------------------------


def host_array(x) -> np.ndarray | None:
    """The values of `x` if they are on the host and concrete, else None.

    Symbolic tensors (inside `tf.function`, `jax.jit` or a Keras functional
    graph) and accelerator tensors are not read, so this never adds a
    device-to-host copy or a trace-time error to a compiled training step.
    """
    if isinstance(x, np.ndarray):
        return x
    backend = keras.backend.backend()
    try:
        if backend == "torch":
            import torch

            if x.device.type != "cpu" or torch.compiler.is_compiling():
                return None
            return x.detach().numpy()
        if backend == "tensorflow":
            import tensorflow as tf

            if not tf.executing_eagerly() or "GPU" in x.device:
                return None
        return np.asarray(ops.convert_to_numpy(x))
    except Exception:  # tracers and symbolic tensors cannot be read
        return None


def _resolve_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ValueError(f"Argument `axis`={axis} is out of range for `y_pred` of rank {rank}.")
    return axis % rank


def _num_classes(y_pred, axis: int) -> int:
    num_classes = y_pred.shape[axis]
    if num_classes is None:
        raise ValueError(
            "The number of classes (size of `y_pred` along `axis`) must be known "
            f"statically. Received y_pred.shape={y_pred.shape}, axis={axis}."
        )
    if num_classes < 2:
        raise ValueError(
            "MIN-ENT and MIX-ENT need at least 2 classes along `axis`, but "
            f"y_pred.shape={tuple(y_pred.shape)} has {num_classes} along axis={axis}. "
            "For a binary problem, output 2 logits (one per class)."
        )
    return int(num_classes)


def _shapes_compatible(a, b) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _check_class_ids(labels, num_classes: int) -> None:
    values = host_array(labels)
    if values is None or values.size == 0:
        return
    if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
        raise ValueError(
            "`y_true` was read as integer class ids (its rank is one less than "
            "y_pred's, or its size along `axis` is 1), but it holds non-integer "
            "values. Pass one-hot or soft targets with the shape of `y_pred` instead."
        )
    lo, hi = values.min(), values.max()
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"`y_true` holds class ids in [{lo:g}, {hi:g}], outside [0, {num_classes}) "
            f"for the {num_classes} classes of `y_pred`. Class ids must be 0-based; "
            "if your labels start at 1 (as EMNIST-Letters' files do), subtract 1."
        )


def _valid_class_ids(labels, num_classes: int):
    """Boolean tensor: the class id is an integer in `[0, num_classes)`."""
    valid = ops.logical_and(
        ops.greater_equal(labels, ops.cast(0, labels.dtype)),
        ops.less(labels, ops.cast(num_classes, labels.dtype)),
    )
    if keras.backend.is_float_dtype(labels.dtype):
        valid = ops.logical_and(valid, ops.equal(labels, ops.floor(labels)))
    return valid


def targets(y_true, y_pred, label_smoothing: float, axis: int):
    """`(target, valid)`: the target distribution shaped like `y_pred`, and for
    class ids a boolean tensor (`y_pred` without `axis`) that is False where an
    id is outside `[0, K)` or not an integer; None for distribution targets.

    When the ids can be read (eager mode) bad ids raise instead; `valid` lets
    compiled code mark those examples (see `nan_where_invalid`).
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    rank = len(y_pred.shape)
    ax = _resolve_axis(axis, rank)
    num_classes = _num_classes(y_pred, ax)
    pred_shape = tuple(y_pred.shape)
    class_free_shape = pred_shape[:ax] + pred_shape[ax + 1 :]
    true_shape = tuple(y_true.shape)

    labels = valid = None
    if len(true_shape) == rank - 1:
        labels = y_true
    elif len(true_shape) == rank and true_shape[ax] == 1:
        labels = ops.squeeze(y_true, axis=ax)
    if labels is not None:
        if not _shapes_compatible(tuple(labels.shape), class_free_shape):
            raise ValueError(
                f"`y_true` of shape {true_shape} was read as class ids, which "
                f"need shape {class_free_shape} (or with a 1 at axis {ax}) to match "
                f"y_pred.shape={pred_shape}."
            )
        _check_class_ids(labels, num_classes)
        valid = _valid_class_ids(labels, num_classes)
        # Invalid ids become class 0 here (torch's one_hot refuses them) and NaN later.
        ids = ops.where(valid, ops.cast(labels, "int32"), 0)
        target = ops.one_hot(ids, num_classes, axis=ax, dtype=y_pred.dtype)
    else:
        if not _shapes_compatible(true_shape, pred_shape):
            raise ValueError(
                f"`y_true` of shape {true_shape} matches neither y_pred.shape="
                f"{pred_shape} (a distribution over classes) nor {class_free_shape} "
                "(integer class ids)."
            )
        target = ops.cast(y_true, y_pred.dtype)
    if label_smoothing:
        target = target * (1.0 - label_smoothing) + label_smoothing / num_classes
    return target, valid


def nan_where_invalid(loss, valid):
    """`loss` with NaN for the examples whose class id is invalid (`valid` False).

    As Keras's own sparse cross entropy gives NaN there: a bad label must not
    drop silently out of the loss in compiled code, where it cannot be checked.
    """
    if valid is None:
        return loss
    return ops.where(valid, loss, ops.full_like(loss, math.nan))


# --------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------


def to_float32(y_pred):
    """`y_pred` as a tensor, half precision and integers upcast to float32."""
    y_pred = ops.convert_to_tensor(y_pred)
    if keras.backend.standardize_dtype(y_pred.dtype) in _HALF_DTYPES or not (
        keras.backend.is_float_dtype(y_pred.dtype)
    ):
        y_pred = ops.cast(y_pred, "float32")
    return y_pred


def log_probs(y_pred, from_logits: bool, axis: int):
    """Returns `(p, log p)` along `axis`, without `0 * log 0` anywhere.

    From logits, `log p` is `log_softmax`. From probabilities, the input is
    normalised to sum 1 and clipped to `[keras.config.epsilon(), 1 - eps]`
    before the log, as `keras.losses.categorical_crossentropy` does.
    """
    if from_logits:
        log_p = ops.log_softmax(y_pred, axis=axis)
        return ops.exp(log_p), log_p
    p = y_pred / ops.sum(y_pred, axis=axis, keepdims=True)
    eps = keras.config.epsilon()
    return p, ops.log(ops.clip(p, eps, 1.0 - eps))


class SoftmaxParts(NamedTuple):
    """The predicted distribution along `axis` from one pass over the classes.

    `log p = shifted - log_total` and `p = exp / total`, where `total` and
    `log_total` have the class axis removed. From logits `z`,
    `shifted = z - max(z) <= 0`, `exp = e^shifted` and `total = sum(exp) >= 1`,
    so nothing overflows or divides by zero. From probabilities, `shifted` is
    `log p` clipped to `[eps, 1 - eps]` as Keras's cross entropy does, `exp` the
    normalised `p`, `total = 1`, `log_total = 0`.

    The terms are sums of these parts (no full `p` or `log p` tensor is formed):
    measured faster than a plain `log_softmax` formulation (benchmarks/RESULTS.md).
    """

    shifted: Any
    exp: Any
    total: Any
    log_total: Any
    axis: int

    def expectation(self, values):
        """`sum_c p_c * values_c`: the mean of `values` under the prediction."""
        return ops.sum(self.exp * values, axis=self.axis) / self.total

    def cross_entropy(self, target):
        """`-sum_c t_c log p_c`."""
        return self.log_total * ops.sum(target, axis=self.axis) - ops.sum(
            target * self.shifted, axis=self.axis
        )

    def entropy(self):
        """`-sum_c p_c log p_c`."""
        return self.log_total - self.expectation(self.shifted)


def softmax_parts(y_pred, from_logits: bool, axis: int) -> SoftmaxParts:
    """`SoftmaxParts` of logits (`from_logits=True`) or of probabilities."""
    if from_logits:
        shifted = y_pred - ops.stop_gradient(ops.amax(y_pred, axis=axis, keepdims=True))
        exp = ops.exp(shifted)
        total = ops.sum(exp, axis=axis)
        return SoftmaxParts(shifted, exp, total, ops.log(total), axis)
    p, log_p = log_probs(y_pred, False, axis)
    return SoftmaxParts(log_p, p, 1.0, 0.0, axis)
