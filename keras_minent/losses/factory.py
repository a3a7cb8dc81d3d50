"""`keras_minent.losses.get`: builds a loss of this package from its short name."""

from __future__ import annotations

from typing import Any

import keras

from keras_minent.losses.classes import PAPER_SETTINGS, MinEntLoss, MixEntLoss

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
