"""The per-example loss functions of `keras_minent.losses`, registered with Keras.

`min_ent`, `mix_ent`, `entropy`, `swapped_cross_entropy` and
`target_distribution`, and the computation both losses share
(`regularized_cross_entropy`), which the loss classes
(`keras_minent.losses.classes`) call too. How targets are read is in the
docstring of `keras_minent.losses`.
"""

from __future__ import annotations

import functools
import math

import keras
from keras import ops

from keras_minent._loss_utils import (
    PACKAGE,
    check_log_base,
    nan_where_invalid,
    softmax_parts,
    targets,
    to_float32,
)

_register = keras.saving.register_keras_serializable(package=PACKAGE)


def target_distribution(y_true, y_pred, label_smoothing: float = 0.0, axis: int = -1):
    """Turns `y_true` into a (smoothed) target distribution shaped like `y_pred`.

    Integer class ids are one-hot encoded along `axis`; distributions are used
    as they are. See the docstring of `keras_minent.losses` for how the two are
    told apart.

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


def entropy_term(target, softmax):
    """MIN-ENT's regularizer `H(p) = -sum p log p` per example; `target` is unused.

    Args:
        target: The target distribution (unused; the hook's signature).
        softmax: The prediction as `keras_minent._loss_utils.SoftmaxParts`.

    Returns:
        The entropy of each example's prediction.
    """
    del target
    return softmax.entropy()


def swapped_term(target, softmax, epsilon):
    """MIX-ENT's regularizer `SCE = -sum p log(t + epsilon)` per example.

    Args:
        target: The target distribution `t`.
        softmax: The prediction as `keras_minent._loss_utils.SoftmaxParts`.
        epsilon: Added to `t` inside the logarithm.

    Returns:
        The swapped cross entropy of each example.
    """
    return -softmax.expectation(ops.log(target + epsilon))


def regularized_cross_entropy(
    y_true, y_pred, regularizer, ce_coef, reg_coef, from_logits, label_smoothing, axis
):
    """`ce_coef * CE + reg_coef * regularizer(t, p, log p)` per example: both losses.

    With `reg_coef == 0` the loss is Keras's own cross entropy op, so it equals
    `keras.losses.CategoricalCrossentropy` bit for bit (TensorFlow's fused op
    rounds differently from any formula here); the regularizer is then not
    computed. Otherwise both terms come from one `SoftmaxParts`: finite for any
    finite logits, and probabilities are clipped as Keras clips them.
    Examples whose class id is invalid get NaN (see `nan_where_invalid`).

    Args:
        y_true: Class ids or one-hot / soft targets (see `keras_minent.losses`).
        y_pred: Logits or probabilities.
        regularizer: `regularizer(target, softmax)` per example (`entropy_term`,
            `swapped_term`).
        ce_coef: The cross entropy's coefficient.
        reg_coef: The regularizer's coefficient.
        from_logits: Whether `y_pred` holds logits.
        label_smoothing: As `keras.losses.CategoricalCrossentropy`.
        axis: The class axis.

    Returns:
        The loss of each example.
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
        y_true: Integer class ids or target distributions (see the docstring
            of `keras_minent.losses`).
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
    return nan_where_invalid(swapped_term(target, softmax, epsilon), valid)


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
        y_true: Integer class ids or target distributions (see the docstring
            of `keras_minent.losses`).
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
    return regularized_cross_entropy(
        y_true,
        y_pred,
        entropy_term,
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
        y_true: Integer class ids or target distributions (see the docstring
            of `keras_minent.losses`).
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
    return regularized_cross_entropy(
        y_true,
        y_pred,
        functools.partial(swapped_term, epsilon=epsilon),
        ce_weight / math.log(check_log_base("ce_log_base", ce_log_base)),
        swapped_weight / math.log(check_log_base("swapped_log_base", swapped_log_base)),
        from_logits,
        label_smoothing,
        axis,
    )
