"""MIN-ENT and MIX-ENT: cross entropy regularized by entropy terms.

The formulas (A. O. Ibraheem, arXiv:2501.13709, 2025), for one example with
target distribution `t` and predicted distribution `p = softmax(z)`:

```
CE  = - sum_c t_c * log p_c                  # cross entropy
H   = - sum_c p_c * log p_c                  # entropy of the prediction
SCE = - sum_c p_c * log(t_c + epsilon)       # "swapped" cross entropy

MIN-ENT = ce_weight * CE / ln(ce_log_base) + entropy_weight * H / ln(entropy_log_base)
MIX-ENT = ce_weight * CE / ln(ce_log_base) + swapped_weight * SCE / ln(swapped_log_base)
```

Everything here is written with `keras.ops` only, so it runs on the
TensorFlow, JAX and PyTorch backends.

**How targets are read.** `y_true` holds integer class ids when its rank is
one less than the rank of `y_pred` (e.g. `(B,)` against `(B, K)`), or when it
has the rank of `y_pred` with size 1 along `axis` (e.g. `(B, 1)`). Otherwise
it must have exactly the shape of `y_pred` and is read as a distribution over
classes (one-hot or soft targets). Class ids are 0-based and must lie in
`[0, K)`; when they are concrete (eager mode) this is checked.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

PACKAGE = "keras_minent"

#: Published settings of the paper (the author's README), by loss name.
#: `MinEntLoss.from_paper()` and `MixEntLoss.from_paper()` use them.
PAPER_SETTINGS: dict[str, dict[str, float]] = {
    "min_ent": {
        "ce_log_base": 2.02,
        "entropy_log_base": 10.73,
        "ce_weight": 0.839,
        "entropy_weight": 0.308,
    },
    "mix_ent": {
        "ce_log_base": 12.58,
        "swapped_log_base": 12.45,
        "ce_weight": 0.717,
        "swapped_weight": 0.943,
    },
}

_HALF_DTYPES = ("float16", "bfloat16")


# --------------------------------------------------------------------------
# Argument validation
# --------------------------------------------------------------------------


def _check_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"Argument `{name}` must be a real number. Received: {name}={value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"Argument `{name}` must be finite. Received: {name}={value}")
    return value


def _check_weight(name: str, value: Any) -> float:
    value = _check_real(name, value)
    if value < 0:
        raise ValueError(
            f"Argument `{name}` must be >= 0 (it weights a non-negative term; "
            f"a negative weight would reward the opposite). Received: {name}={value}"
        )
    return value


def _check_log_base(name: str, value: Any) -> float:
    value = _check_real(name, value)
    if value <= 0 or value == 1:
        raise ValueError(
            f"Argument `{name}` must be > 0 and != 1 (it is the base of a "
            f"logarithm; use math.e for the natural log). Received: {name}={value}"
        )
    return value


def _check_epsilon(value: Any) -> float:
    value = _check_real("epsilon", value)
    if value <= 0:
        raise ValueError(
            "Argument `epsilon` must be > 0: with a one-hot target, "
            f"log(0 + epsilon) must be finite. Received: epsilon={value}"
        )
    return value


def _check_label_smoothing(value: Any) -> float:
    value = _check_real("label_smoothing", value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f"Argument `label_smoothing` must be in [0, 1]. Received: label_smoothing={value}"
        )
    return value


def _check_axis(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"Argument `axis` must be an integer. Received: axis={value!r}")
    return int(value)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"Argument `{name}` must be True or False. Received: {name}={value!r}")
    return bool(value)


# --------------------------------------------------------------------------
# Target handling
# --------------------------------------------------------------------------


def _host_array(x) -> np.ndarray | None:
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
    values = _host_array(labels)
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


def target_distribution(y_true, y_pred, label_smoothing: float = 0.0, axis: int = -1):
    """Turns `y_true` into a (smoothed) target distribution shaped like `y_pred`.

    Integer class ids are one-hot encoded along `axis`; distributions are used
    as they are. See the module docstring for how the two are told apart.

    Args:
        y_true: Class ids, shape `y_pred.shape` without `axis` (or with size 1
            there), or a distribution with the shape of `y_pred`.
        y_pred: Logits or probabilities; only its shape and dtype are used.
        label_smoothing: `t = (1 - label_smoothing) * t + label_smoothing / K`.
        axis: The class axis of `y_pred`.

    Returns:
        A float tensor with the shape and dtype of `y_pred`.

    Raises:
        ValueError: If the shapes do not match, there are fewer than 2
            classes, or (when the values can be read) class ids are outside
            `[0, K)` or not integers.
    """
    return _targets(y_true, y_pred, label_smoothing, axis)[0]


def _targets(y_true, y_pred, label_smoothing, axis):
    """`(target, onehot)`: `onehot` is the unsmoothed one-hot of integer labels, else None."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    rank = len(y_pred.shape)
    ax = _resolve_axis(axis, rank)
    num_classes = _num_classes(y_pred, ax)
    pred_shape = tuple(y_pred.shape)
    class_free_shape = pred_shape[:ax] + pred_shape[ax + 1 :]
    true_shape = tuple(y_true.shape)

    labels = onehot = None
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
        target = onehot = ops.one_hot(
            ops.cast(labels, "int32"), num_classes, axis=ax, dtype=y_pred.dtype
        )
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
    return target, onehot


def _to_float32(y_pred):
    y_pred = ops.convert_to_tensor(y_pred)
    if keras.backend.standardize_dtype(y_pred.dtype) in _HALF_DTYPES or not (
        keras.backend.is_float_dtype(y_pred.dtype)
    ):
        y_pred = ops.cast(y_pred, "float32")
    return y_pred


def _log_probs(y_pred, from_logits: bool, axis: int):
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


# --------------------------------------------------------------------------
# Per-example functions
# --------------------------------------------------------------------------


def entropy(y_pred, from_logits: bool = False, axis: int = -1):
    """Entropy `H(p) = -sum_c p_c ln p_c` of the predicted distribution.

    Args:
        y_pred: Logits (`from_logits=True`) or probabilities.
        from_logits: Whether `y_pred` holds logits.
        axis: The class axis.

    Returns:
        The entropy in nats, one value per example (float32 or wider).

    Example:
    >>> entropy([[0.0, 0.0]], from_logits=True)  # ln 2 = 0.693...
    """
    y_pred = _to_float32(y_pred)
    p, log_p = _log_probs(y_pred, from_logits, axis)
    return -ops.sum(p * log_p, axis=axis)


def swapped_cross_entropy(
    y_true,
    y_pred,
    from_logits: bool = False,
    epsilon: float = 1e-6,
    label_smoothing: float = 0.0,
    axis: int = -1,
):
    """Swapped cross entropy `SCE = -sum_c p_c ln(t_c + epsilon)`.

    The roles of target and prediction are exchanged relative to cross
    entropy. For a one-hot target it equals
    `-ln(epsilon) * (1 - p_y) - ln(1 + epsilon) * p_y`.

    Args:
        y_true: Integer class ids or target distributions (see the module
            docstring).
        y_pred: Logits (`from_logits=True`) or probabilities.
        from_logits: Whether `y_pred` holds logits.
        epsilon: Added to the target inside the log; must be > 0.
        label_smoothing: Smoothing applied to the target first.
        axis: The class axis.

    Returns:
        One value per example, in nats.

    Example:
    >>> swapped_cross_entropy([0], [[0.0, 0.0]], from_logits=True)
    """
    y_pred = _to_float32(y_pred)
    target = target_distribution(y_true, y_pred, label_smoothing, axis)
    return _swapped(target, y_pred, from_logits, epsilon, axis)


def _swapped(target, y_pred, from_logits, epsilon, axis):
    p, _ = _log_probs(y_pred, from_logits, axis)
    return -ops.sum(p * ops.log(target + epsilon), axis=axis)


def _softmax_parts(z, axis):
    """`(s, e, sum_e, log_sum_e)` with `s = z - max(z)`, `e = exp(s)`: one exp pass.

    Then `log p = s - log_sum_e` and `p = e / sum_e`; `s <= 0` and
    `sum_e >= 1`, so nothing below overflows or divides by zero.
    """
    s = z - ops.stop_gradient(ops.amax(z, axis=axis, keepdims=True))
    e = ops.exp(s)
    sum_e = ops.sum(e, axis=axis, keepdims=True)
    return s, e, sum_e, ops.log(sum_e)


def _regularized(target, y_pred, from_logits, axis, ce_coef, reg_coef, reg_fn):
    """`ce_coef * CE + reg_coef * reg`, sharing one softmax between the terms.

    With `reg_coef == 0` this is Keras's own cross entropy op, so the loss
    then equals `keras.losses.CategoricalCrossentropy` bit for bit. From
    logits, every term is a sum of non-negative parts of one softmax pass
    (no cancellation): `CE = log_sum_e * sum(t) - sum(t * s)`,
    `H = log_sum_e - sum(e * s) / sum_e`, `SCE = -sum(e * log(t + eps)) / sum_e`.
    """
    if not reg_coef:
        ce = ops.categorical_crossentropy(target, y_pred, from_logits=from_logits, axis=axis)
        return ce * ce_coef
    if from_logits:
        s, e, sum_e, log_sum_e = _softmax_parts(y_pred, axis)
        parts = (s, e, ops.squeeze(sum_e, axis), ops.squeeze(log_sum_e, axis))
        ce = ops.squeeze(log_sum_e, axis) * ops.sum(target, axis=axis) - ops.sum(
            target * s, axis=axis
        )
    else:
        p, log_p = _log_probs(y_pred, False, axis)
        parts = None
        ce = -ops.sum(target * log_p, axis=axis)
    return ce * ce_coef + reg_fn(target, y_pred, parts) * reg_coef


def _entropy_term(axis):
    def fn(target, y_pred, parts):
        if parts is None:
            p, log_p = _log_probs(y_pred, False, axis)
            return -ops.sum(p * log_p, axis=axis)
        s, e, sum_e, log_sum_e = parts
        return log_sum_e - ops.sum(e * s, axis=axis) / sum_e

    return fn


def _swapped_term(epsilon, axis, onehot=None, label_smoothing=0.0, num_classes=None):
    def fn(target, y_pred, parts):
        if parts is None:
            return _swapped(target, y_pred, False, epsilon, axis)
        _, e, sum_e, _ = parts
        if onehot is None:
            return -ops.sum(e * ops.log(target + epsilon), axis=axis) / sum_e
        # Integer labels: log(t + eps) takes two values, so no log per class is
        # needed: SCE = -(c_other + (c_true - c_other) * p_y).
        c_other = math.log(label_smoothing / num_classes + epsilon)
        c_true = math.log(1.0 - label_smoothing + label_smoothing / num_classes + epsilon)
        p_true = ops.sum(onehot * e, axis=axis) / sum_e
        return -(c_other + (c_true - c_other) * p_true)

    return fn


def min_ent(
    y_true,
    y_pred,
    entropy_weight: float = 0.1,
    ce_weight: float = 1.0,
    ce_log_base: float = math.e,
    entropy_log_base: float = math.e,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
):
    """MIN-ENT loss per example: cross entropy plus a minimum-entropy term.

    `ce_weight * CE / ln(ce_log_base) + entropy_weight * H(p) / ln(entropy_log_base)`.
    Half-precision inputs are computed in float32.

    Args:
        y_true: Integer class ids or target distributions (see the module
            docstring).
        y_pred: Logits (`from_logits=True`) or probabilities.
        entropy_weight: Weight of the entropy term.
        ce_weight: Weight of the cross entropy term.
        ce_log_base: Base of the logarithm of the cross entropy term.
        entropy_log_base: Base of the logarithm of the entropy term.
        from_logits: Whether `y_pred` holds logits.
        label_smoothing: Smoothing applied to the target.
        axis: The class axis.

    Returns:
        One loss value per example.

    Example:
    >>> min_ent([1, 0], [[2.0, -1.0], [0.5, 0.1]], from_logits=True)
    """
    y_pred = _to_float32(y_pred)
    target = target_distribution(y_true, y_pred, label_smoothing, axis)
    return _regularized(
        target,
        y_pred,
        from_logits,
        axis,
        ce_weight / math.log(ce_log_base),
        entropy_weight / math.log(entropy_log_base),
        _entropy_term(axis),
    )


def mix_ent(
    y_true,
    y_pred,
    swapped_weight: float = 0.1,
    ce_weight: float = 1.0,
    ce_log_base: float = math.e,
    swapped_log_base: float = math.e,
    epsilon: float = 1e-6,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
):
    """MIX-ENT loss per example: cross entropy plus a swapped cross entropy.

    `ce_weight * CE / ln(ce_log_base) + swapped_weight * SCE / ln(swapped_log_base)`.
    Half-precision inputs are computed in float32.

    Args:
        y_true: Integer class ids or target distributions (see the module
            docstring).
        y_pred: Logits (`from_logits=True`) or probabilities.
        swapped_weight: Weight of the swapped cross entropy term.
        ce_weight: Weight of the cross entropy term.
        ce_log_base: Base of the logarithm of the cross entropy term.
        swapped_log_base: Base of the logarithm of the swapped term.
        epsilon: Added to the target inside the swapped term's log.
        from_logits: Whether `y_pred` holds logits.
        label_smoothing: Smoothing applied to the target.
        axis: The class axis.

    Returns:
        One loss value per example.

    Example:
    >>> mix_ent([1, 0], [[2.0, -1.0], [0.5, 0.1]], from_logits=True)
    """
    y_pred = _to_float32(y_pred)
    target, onehot = _targets(y_true, y_pred, label_smoothing, axis)
    num_classes = y_pred.shape[axis]
    return _regularized(
        target,
        y_pred,
        from_logits,
        axis,
        ce_weight / math.log(ce_log_base),
        swapped_weight / math.log(swapped_log_base),
        _swapped_term(epsilon, axis, onehot, label_smoothing, num_classes),
    )


# --------------------------------------------------------------------------
# Loss classes
# --------------------------------------------------------------------------


class _RegularizedCrossEntropy(keras.losses.Loss):
    """Shared construction, validation and config of the two losses."""

    _fn = None  # the per-example function
    _reg_weight = ""  # name of the regularizer weight argument
    _reg_base = ""  # name of the regularizer log base argument
    _paper_key = ""

    def __init__(
        self,
        reg_weight,
        ce_weight,
        ce_log_base,
        reg_log_base,
        from_logits,
        label_smoothing,
        axis,
        reduction,
        name,
        dtype,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._dtype_arg = dtype
        setattr(self, self._reg_weight, _check_weight(self._reg_weight, reg_weight))
        self.ce_weight = _check_weight("ce_weight", ce_weight)
        if self.ce_weight == 0 and getattr(self, self._reg_weight) == 0:
            raise ValueError(
                f"`ce_weight` and `{self._reg_weight}` are both 0, so the loss would "
                "be identically 0. Set at least one of them > 0."
            )
        self.ce_log_base = _check_log_base("ce_log_base", ce_log_base)
        setattr(self, self._reg_base, _check_log_base(self._reg_base, reg_log_base))
        self.from_logits = _check_bool("from_logits", from_logits)
        self.label_smoothing = _check_label_smoothing(label_smoothing)
        self.axis = _check_axis(axis)

    def _fn_kwargs(self) -> dict[str, Any]:
        return {
            self._reg_weight: getattr(self, self._reg_weight),
            "ce_weight": self.ce_weight,
            "ce_log_base": self.ce_log_base,
            self._reg_base: getattr(self, self._reg_base),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "axis": self.axis,
        }

    def call(self, y_true, y_pred):
        """Returns the loss of each example (`y_pred` without `axis`)."""
        return type(self)._fn(y_true, y_pred, **self._fn_kwargs())

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(self._fn_kwargs())
        dtype = self._dtype_arg
        if dtype is not None and not isinstance(dtype, str):
            dtype = keras.dtype_policies.serialize(dtype)
        config["dtype"] = dtype
        return config

    @classmethod
    def from_paper(cls, **kwargs):
        """The loss with the paper's published settings (`PAPER_SETTINGS`).

        Args:
            **kwargs: Other constructor arguments (e.g. `from_logits=True`);
                they may also override a published value.

        Returns:
            A new loss instance.
        """
        return cls(**{**PAPER_SETTINGS[cls._paper_key], **kwargs})

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package=PACKAGE)
class MinEntLoss(_RegularizedCrossEntropy):
    """Cross entropy regularized by the entropy of the prediction (MIN-ENT).

    Formula, per example (`t` target distribution, `p` prediction):

    ```python
    loss = ce_weight * CE(t, p) / ln(ce_log_base)
           + entropy_weight * H(p) / ln(entropy_log_base)
    ```

    with `CE = -sum t log p` and `H = -sum p log p`. The entropy term pushes
    predictions to be confident: the opposite sign of a confidence penalty.

    `y_true` may hold integer class ids, shape `(B,)` or `(B, 1)`, or
    one-hot / soft targets of shape `(B, K)` (the rule is in the module
    docstring of `keras_minent.losses`). The loss is computed in float32 even
    when the model runs under a `mixed_float16` / `mixed_bfloat16` policy,
    and from `log_softmax` when `from_logits=True` (recommended).

    Args:
        entropy_weight: Weight of the entropy term, >= 0. Defaults to 0.1:
            the paper's published MIN-ENT setting weights the entropy term at
            0.308 / ln(10.73) = 0.130 against 0.839 / ln(2.02) = 1.193 for
            cross entropy, a ratio of 0.109; 0.1 keeps that strength with the
            plain natural-log form. Tune it (see `keras_minent.tuning`).
        ce_weight: Weight of the cross entropy term, >= 0. Defaults to 1.0.
        ce_log_base: Base of the logarithm of the cross entropy term (> 0,
            != 1). Defaults to e.
        entropy_log_base: Base of the logarithm of the entropy term (> 0,
            != 1). Defaults to e.
        from_logits: Whether `y_pred` holds logits. Defaults to False.
        label_smoothing: In [0, 1]; the target becomes
            `(1 - label_smoothing) * t + label_smoothing / K`.
        axis: The class axis. Defaults to -1.
        reduction: As in `keras.losses.Loss`: `"sum_over_batch_size"`
            (default), `"sum"`, `"mean"`, `"mean_with_sample_weight"`,
            `"none"` or `None`.
        name: Name of the loss. Defaults to `"min_ent_loss"`.
        dtype: Dtype of the loss computation; defaults to
            `keras.backend.floatx()` (float32), whatever the global policy.

    Raises:
        ValueError: If a weight is negative or both are 0, a log base is
            <= 0 or == 1, `label_smoothing` is outside [0, 1], or `axis` is not
            an integer. When called, if `y_true` and `y_pred` do not match or
            (in eager mode) class ids are outside `[0, K)`.

    Example:
    ```python
    model.compile(optimizer="adam", loss=MinEntLoss(0.1, from_logits=True))
    # The paper's published setting:
    model.compile(optimizer="adam", loss=MinEntLoss.from_paper(from_logits=True))
    ```
    """

    _fn = staticmethod(min_ent)
    _reg_weight = "entropy_weight"
    _reg_base = "entropy_log_base"
    _paper_key = "min_ent"

    def __init__(
        self,
        entropy_weight: float = 0.1,
        ce_weight: float = 1.0,
        ce_log_base: float = math.e,
        entropy_log_base: float = math.e,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "min_ent_loss",
        dtype: Any = None,
    ):
        super().__init__(
            entropy_weight,
            ce_weight,
            ce_log_base,
            entropy_log_base,
            from_logits,
            label_smoothing,
            axis,
            reduction,
            name,
            dtype,
        )


@keras.saving.register_keras_serializable(package=PACKAGE)
class MixEntLoss(_RegularizedCrossEntropy):
    """Cross entropy regularized by a swapped cross entropy (MIX-ENT).

    Formula, per example (`t` target distribution, `p` prediction):

    ```python
    loss = ce_weight * CE(t, p) / ln(ce_log_base)
           + swapped_weight * SCE(t, p) / ln(swapped_log_base)
    ```

    with `CE = -sum t log p` and `SCE = -sum p log(t + epsilon)`
    `= H(p) + KL(p || t + epsilon)`. For a one-hot target
    `SCE = -ln(epsilon) * (1 - p_y) - ln(1 + epsilon) * p_y`: linear in the
    probability of the true class (the "reverse cross entropy" of Symmetric
    Cross Entropy with `A = ln epsilon`).

    Targets are read as in `MinEntLoss`. Computed in float32 under mixed
    precision.

    Args:
        swapped_weight: Weight of the swapped term, >= 0. Defaults to 0.1:
            with `epsilon=1e-6` the swapped term of a one-hot target ranges
            over [0, 13.8], so 0.1 keeps it at most about 1.4, the size of
            cross entropy at p_y = 0.25: cross entropy still leads early in
            training. The paper's setting (`from_paper()`) is much stronger
            (ratio 1.32); tune it (see `keras_minent.tuning`).
        ce_weight: Weight of the cross entropy term, >= 0. Defaults to 1.0.
        ce_log_base: Base of the logarithm of the cross entropy term (> 0,
            != 1). Defaults to e.
        swapped_log_base: Base of the logarithm of the swapped term (> 0,
            != 1). Defaults to e.
        epsilon: > 0, added to the target inside the log of the swapped
            term. Defaults to 1e-6, as in the author's code.
        from_logits: Whether `y_pred` holds logits. Defaults to False.
        label_smoothing: In [0, 1], applied to the target of both terms.
        axis: The class axis. Defaults to -1.
        reduction: As in `keras.losses.Loss`.
        name: Name of the loss. Defaults to `"mix_ent_loss"`.
        dtype: Dtype of the loss computation; defaults to float32.

    Raises:
        ValueError: As `MinEntLoss`, and if `epsilon` <= 0.

    Example:
    ```python
    model.compile(optimizer="adam", loss=MixEntLoss(0.1, from_logits=True))
    model.compile(optimizer="adam", loss=MixEntLoss.from_paper(from_logits=True))
    ```
    """

    _fn = staticmethod(mix_ent)
    _reg_weight = "swapped_weight"
    _reg_base = "swapped_log_base"
    _paper_key = "mix_ent"

    def __init__(
        self,
        swapped_weight: float = 0.1,
        ce_weight: float = 1.0,
        ce_log_base: float = math.e,
        swapped_log_base: float = math.e,
        epsilon: float = 1e-6,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "mix_ent_loss",
        dtype: Any = None,
    ):
        self.epsilon = _check_epsilon(epsilon)
        super().__init__(
            swapped_weight,
            ce_weight,
            ce_log_base,
            swapped_log_base,
            from_logits,
            label_smoothing,
            axis,
            reduction,
            name,
            dtype,
        )

    def _fn_kwargs(self) -> dict[str, Any]:
        return {**super()._fn_kwargs(), "epsilon": self.epsilon}


# --------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------

#: The loss names `get` understands (also the choices of the command line).
LOSS_NAMES = ("ce", "min_ent", "mix_ent")

_REG_ARGS = {
    "min_ent": ("entropy_weight", "entropy_log_base"),
    "mix_ent": ("swapped_weight", "swapped_log_base"),
}


def get(
    name: str,
    weight: float | None = None,
    *,
    paper_settings: bool = False,
    reg_log_base: float | None = None,
    **kwargs: Any,
) -> keras.losses.Loss:
    """Builds a loss of this package from its short name.

    The one mapping from the names used by the command line, the
    configuration, the tuner and the benchmarks to loss objects.

    Args:
        name: `"ce"` (cross entropy: `MinEntLoss(entropy_weight=0)`, equal to
            `keras.losses.CategoricalCrossentropy` and also taking integer
            labels), `"min_ent"` or `"mix_ent"`.
        weight: Weight of the regularizer (`entropy_weight` of MIN-ENT,
            `swapped_weight` of MIX-ENT). None: the loss's default, or the
            paper's value with `paper_settings=True`. Must be None or 0 for
            `"ce"`.
        paper_settings: Start from the paper's published weights and log
            bases (`PAPER_SETTINGS`); `weight` and `kwargs` override them.
        reg_log_base: Log base of the regularizer (`entropy_log_base` or
            `swapped_log_base`); None: the default (or the paper's).
        **kwargs: Other constructor arguments of the loss class
            (`ce_weight`, `ce_log_base`, `from_logits`, `label_smoothing`,
            `axis`, `reduction`, `name`, `dtype`; `epsilon` for MIX-ENT only).

    Returns:
        A new `keras.losses.Loss`.

    Raises:
        ValueError: If `name` is unknown, or an argument does not apply to the
            loss (a regularizer weight, log base or paper settings for `"ce"`,
            `epsilon` for anything but `"mix_ent"`), or the loss refuses a value.

    Example:
    ```python
    loss = keras_minent.losses.get("min_ent", 0.05, from_logits=True)
    model.compile(optimizer="adam", loss=loss)
    ```
    """
    if name not in LOSS_NAMES:
        raise ValueError(f"Unknown loss {name!r}: expected one of {LOSS_NAMES}.")
    if "epsilon" in kwargs and name != "mix_ent":
        raise ValueError(f"`epsilon` applies only to 'mix_ent', not to {name!r}.")
    if name == "ce":
        if weight or reg_log_base is not None or paper_settings:
            raise ValueError(
                "'ce' (plain cross entropy) has no regularizer: a regularizer weight, "
                "log base or the paper's settings do not apply to it."
            )
        return MinEntLoss(entropy_weight=0.0, **{"name": "cross_entropy", **kwargs})
    weight_arg, base_arg = _REG_ARGS[name]
    args = dict(PAPER_SETTINGS[name]) if paper_settings else {}
    if weight is not None:
        args[weight_arg] = weight
    if reg_log_base is not None:
        args[base_arg] = reg_log_base
    args.update(kwargs)
    return (MinEntLoss if name == "min_ent" else MixEntLoss)(**args)
