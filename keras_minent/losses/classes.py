"""The loss classes of `keras_minent.losses`: `MinEntLoss` and `MixEntLoss`.

Both derive from `_RegularizedCrossEntropy`, which holds the construction, the
call (`keras_minent.losses.functions.regularized_cross_entropy`) and the
config they share. `PAPER_SETTINGS` holds the paper's published settings.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import keras

from keras_minent._loss_utils import (
    PACKAGE,
    check_axis,
    check_bool,
    check_epsilon,
    check_label_smoothing,
    check_log_base,
    check_not_both_zero,
    check_weight,
)
from keras_minent.losses.functions import (
    entropy_term,
    regularized_cross_entropy,
    swapped_term,
)

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
        return regularized_cross_entropy(
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
        return entropy_term(target, softmax)

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
        return swapped_term(target, softmax, self.epsilon)

    def regularizer_coefficient(self) -> float:
        return self.swapped_weight / math.log(self.swapped_log_base)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "swapped_weight": self.swapped_weight,
            "swapped_log_base": self.swapped_log_base,
            "epsilon": self.epsilon,
        }
