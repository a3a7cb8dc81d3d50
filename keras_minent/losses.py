"""MIN-ENT and MIX-ENT: cross entropy regularized by entropy terms.

The formulas (A. O. Ibraheem, arXiv:2501.13709, 2025; see `docs/method.md`),
for one example with target distribution `t` and predicted distribution
`p = softmax(z)`:

```
CE  = - sum_c t_c * log p_c                  # cross entropy
H   = - sum_c p_c * log p_c                  # entropy of the prediction
SCE = - sum_c p_c * log(t_c + epsilon)       # "swapped" cross entropy

MIN-ENT = ce_weight * CE / ln(ce_log_base) + entropy_weight * H / ln(entropy_log_base)
MIX-ENT = ce_weight * CE / ln(ce_log_base) + swapped_weight * SCE / ln(swapped_log_base)
```

Both are one computation (`_regularized_cross_entropy`): cross entropy plus
a regularizer, both read from one softmax pass (`SoftmaxParts`). Each loss
class supplies its regularizer through one hook, `regularizer(target, softmax)`,
and its coefficient through `regularizer_coefficient()`. Log bases must be > 1.

Everything here is written with `keras.ops` only, so it runs on the
TensorFlow, JAX and PyTorch backends.

**How targets are read.** `y_true` holds integer class ids when its rank is
one less than the rank of `y_pred` (e.g. `(B,)` against `(B, K)`), or when it
has the rank of `y_pred` with size 1 along `axis` (e.g. `(B, 1)`). Otherwise
it must have exactly the shape of `y_pred` and is read as a distribution over
classes (one-hot or soft targets). Class ids are 0-based and must be integers
(integer-valued floats such as `3.0` are accepted) in `[0, K)`. When they are
concrete (eager mode) this is checked and a bad id raises; in compiled code
(`jax.jit`, `tf.function`, `torch.compile`) the loss of such an example is NaN,
as with Keras's own sparse cross entropy.
"""

from __future__ import annotations

import abc
import functools
import math
from typing import Any

import keras
from keras import ops

from keras_minent._loss_utils import (
    PACKAGE,
    check_axis,
    check_bool,
    check_epsilon,
    check_label_smoothing,
    check_log_base,
    check_not_both_zero,
    check_weight,
    nan_where_invalid,
    softmax_parts,
    targets,
    to_float32,
)

__all__ = [
    "LOSS_NAMES",
    "PACKAGE",
    "PAPER_SETTINGS",
    "MinEntLoss",
    "MixEntLoss",
    "entropy",
    "get",
    "min_ent",
    "mix_ent",
    "swapped_cross_entropy",
    "target_distribution",
]

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

_register = keras.saving.register_keras_serializable(package=PACKAGE)


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
    return targets(y_true, y_pred, label_smoothing, axis)[0]


# --------------------------------------------------------------------------
# The regularizers, per example, from the target and the `SoftmaxParts`
# --------------------------------------------------------------------------


def _entropy_term(target, softmax):
    """`H(p) = -sum p log p`; `target` is unused."""
    del target
    return softmax.entropy()


def _swapped_term(target, softmax, epsilon):
    """`SCE = -sum p log(t + epsilon)`."""
    return -softmax.expectation(ops.log(target + epsilon))


def _regularized_cross_entropy(
    y_true, y_pred, regularizer, ce_coef, reg_coef, from_logits, label_smoothing, axis
):
    """`ce_coef * CE + reg_coef * regularizer(t, p, log p)` per example: both losses.

    With `reg_coef == 0` the loss is Keras's own cross entropy op, so it equals
    `keras.losses.CategoricalCrossentropy` bit for bit (TensorFlow's fused op
    rounds differently from any formula here); the regularizer is then not
    computed. Otherwise both terms come from one `SoftmaxParts`: finite for any
    finite logits, and probabilities are clipped as Keras clips them.
    Examples whose class id is invalid get NaN (see `nan_where_invalid`).
    """
    y_pred = to_float32(y_pred)
    target, valid = targets(y_true, y_pred, label_smoothing, axis)
    if reg_coef:
        softmax = softmax_parts(y_pred, from_logits, axis)
        loss = softmax.cross_entropy(target) * ce_coef + regularizer(target, softmax) * reg_coef
    else:
        ce = ops.categorical_crossentropy(target, y_pred, from_logits=from_logits, axis=axis)
        loss = ce * ce_coef
    return nan_where_invalid(loss, valid)


# --------------------------------------------------------------------------
# Per-example functions
# --------------------------------------------------------------------------


@_register
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
    return softmax_parts(to_float32(y_pred), from_logits, axis).entropy()


@_register
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
        One value per example, in nats (NaN for an invalid class id in
        compiled code).

    Example:
    >>> swapped_cross_entropy([0], [[0.0, 0.0]], from_logits=True)
    """
    y_pred = to_float32(y_pred)
    target, valid = targets(y_true, y_pred, label_smoothing, axis)
    softmax = softmax_parts(y_pred, from_logits, axis)
    return nan_where_invalid(_swapped_term(target, softmax, epsilon), valid)


@_register
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
        ce_log_base: Base of the logarithm of the cross entropy term (> 1).
        entropy_log_base: Base of the logarithm of the entropy term (> 1).
        from_logits: Whether `y_pred` holds logits.
        label_smoothing: Smoothing applied to the target.
        axis: The class axis.

    Returns:
        One loss value per example (NaN for an invalid class id in compiled code).

    Raises:
        ValueError: If a log base is <= 1, or as `target_distribution`.

    Example:
    >>> min_ent([1, 0], [[2.0, -1.0], [0.5, 0.1]], from_logits=True)
    """
    return _regularized_cross_entropy(
        y_true,
        y_pred,
        _entropy_term,
        ce_weight / math.log(check_log_base("ce_log_base", ce_log_base)),
        entropy_weight / math.log(check_log_base("entropy_log_base", entropy_log_base)),
        from_logits,
        label_smoothing,
        axis,
    )


@_register
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
        ce_log_base: Base of the logarithm of the cross entropy term (> 1).
        swapped_log_base: Base of the logarithm of the swapped term (> 1).
        epsilon: Added to the target inside the swapped term's log.
        from_logits: Whether `y_pred` holds logits.
        label_smoothing: Smoothing applied to the target.
        axis: The class axis.

    Returns:
        One loss value per example (NaN for an invalid class id in compiled code).

    Raises:
        ValueError: If a log base is <= 1, or as `target_distribution`.

    Example:
    >>> mix_ent([1, 0], [[2.0, -1.0], [0.5, 0.1]], from_logits=True)
    """
    return _regularized_cross_entropy(
        y_true,
        y_pred,
        functools.partial(_swapped_term, epsilon=epsilon),
        ce_weight / math.log(check_log_base("ce_log_base", ce_log_base)),
        swapped_weight / math.log(check_log_base("swapped_log_base", swapped_log_base)),
        from_logits,
        label_smoothing,
        axis,
    )


# --------------------------------------------------------------------------
# Loss classes
# --------------------------------------------------------------------------


class _RegularizedCrossEntropy(keras.losses.Loss, abc.ABC):
    """Cross entropy plus a regularizer: the construction, call and config both losses share.

    A subclass validates and stores its own regularizer's arguments, then
    implements two hooks: `regularizer(target, softmax)`, the term of each
    example in nats, and `regularizer_coefficient()`, its weight divided by the
    natural log of its base. It adds its arguments to `get_config`.
    """

    _paper_key = ""  # the key of PAPER_SETTINGS

    def __init__(
        self,
        *,
        ce_weight,
        ce_log_base,
        from_logits,
        label_smoothing,
        axis,
        reduction,
        name,
        dtype,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._dtype_arg = dtype
        self.ce_weight = check_weight("ce_weight", ce_weight)
        self.ce_log_base = check_log_base("ce_log_base", ce_log_base)
        self.from_logits = check_bool("from_logits", from_logits)
        self.label_smoothing = check_label_smoothing(label_smoothing)
        self.axis = check_axis(axis)

    @abc.abstractmethod
    def regularizer(self, target, softmax):
        """The regularizer of each example, in nats (`y_pred` without `axis`).

        Args:
            target: The (smoothed) target distribution, shaped like `y_pred`.
            softmax: The prediction as `keras_minent._loss_utils.SoftmaxParts`
                (float32): `p = softmax.exp / softmax.total`, with
                `softmax.expectation(values)` for `sum p * values`.
        """

    @abc.abstractmethod
    def regularizer_coefficient(self) -> float:
        """The regularizer's weight over the natural log of its log base."""

    def call(self, y_true, y_pred):
        """Returns the loss of each example (`y_pred` without `axis`)."""
        return _regularized_cross_entropy(
            y_true,
            y_pred,
            self.regularizer,
            self.ce_weight / math.log(self.ce_log_base),
            self.regularizer_coefficient(),
            self.from_logits,
            self.label_smoothing,
            self.axis,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        dtype = self._dtype_arg
        if dtype is not None and not isinstance(dtype, str):
            dtype = keras.dtype_policies.serialize(dtype)
        config.update(
            ce_weight=self.ce_weight,
            ce_log_base=self.ce_log_base,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            axis=self.axis,
            dtype=dtype,
        )
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
        # Equal losses (same type and config) hash equal, as `__eq__` requires.
        return hash((type(self), repr(self)))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@_register
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
        ce_log_base: Base of the logarithm of the cross entropy term (> 1).
            Defaults to e.
        entropy_log_base: Base of the logarithm of the entropy term (> 1).
            Defaults to e.
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
            <= 1 (a base in (0, 1) would flip the term's sign),
            `label_smoothing` is outside [0, 1], or `axis` is not an integer. When called, if `y_true` and `y_pred` do not match or
            (in eager mode) class ids are outside `[0, K)` or not integers;
            in compiled code such examples get a NaN loss instead.

    Example:
    ```python
    model.compile(optimizer="adam", loss=MinEntLoss(0.1, from_logits=True))
    # The paper's published setting:
    model.compile(optimizer="adam", loss=MinEntLoss.from_paper(from_logits=True))
    ```
    """

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
        self.entropy_weight = check_weight("entropy_weight", entropy_weight)
        self.entropy_log_base = check_log_base("entropy_log_base", entropy_log_base)
        super().__init__(
            ce_weight=ce_weight,
            ce_log_base=ce_log_base,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        check_not_both_zero(self.ce_weight, "entropy_weight", self.entropy_weight)

    def regularizer(self, target, softmax):
        """The entropy `H(p) = -sum p log p` of each prediction."""
        return _entropy_term(target, softmax)

    def regularizer_coefficient(self) -> float:
        return self.entropy_weight / math.log(self.entropy_log_base)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "entropy_weight": self.entropy_weight,
            "entropy_log_base": self.entropy_log_base,
        }


@_register
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
        ce_log_base: Base of the logarithm of the cross entropy term (> 1).
            Defaults to e.
        swapped_log_base: Base of the logarithm of the swapped term (> 1).
            Defaults to e.
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
        self.swapped_weight = check_weight("swapped_weight", swapped_weight)
        self.swapped_log_base = check_log_base("swapped_log_base", swapped_log_base)
        self.epsilon = check_epsilon(epsilon)
        super().__init__(
            ce_weight=ce_weight,
            ce_log_base=ce_log_base,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        check_not_both_zero(self.ce_weight, "swapped_weight", self.swapped_weight)

    def regularizer(self, target, softmax):
        """The swapped cross entropy `-sum p log(t + epsilon)` of each example."""
        return _swapped_term(target, softmax, self.epsilon)

    def regularizer_coefficient(self) -> float:
        return self.swapped_weight / math.log(self.swapped_log_base)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "swapped_weight": self.swapped_weight,
            "swapped_log_base": self.swapped_log_base,
            "epsilon": self.epsilon,
        }


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
