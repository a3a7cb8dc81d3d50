"""Metrics that show what the regularizers do: predictive entropy and calibration.

Both are stateful `keras.metrics.Metric`s written with `keras.ops`: they
accumulate over batches (and replicas) exactly, take `sample_weight`, and
serialize.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_minent._loss_utils import PACKAGE, check_axis, check_bool, log_probs, to_float32


def _probabilities(y_pred, from_logits: bool, axis: int):
    p, log_p = log_probs(to_float32(y_pred), from_logits, axis)
    return p, log_p


def _flat_weights(sample_weight, shape, dtype):
    if sample_weight is None:
        return ops.ones(shape, dtype=dtype)
    w = ops.cast(ops.convert_to_tensor(sample_weight), dtype)
    return ops.broadcast_to(ops.reshape(w, (-1,)) if len(w.shape) else w, shape)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PredictiveEntropy(keras.metrics.Metric):
    """Mean entropy `H(p) = -sum_c p_c ln p_c` (nats) of the predicted distribution.

    Lower means more confident predictions; MIN-ENT lowers it on purpose.
    `y_true` is ignored. Weighted by `sample_weight` if given.

    Args:
        from_logits: Whether `y_pred` holds logits (True for keras-minent's models).
        axis: The class axis.
        name: Name of the metric.
        dtype: Dtype of the metric's state.

    Raises:
        ValueError: If `from_logits` is not a bool or `axis` not an integer.

    Example:
    ```python
    model.compile(..., metrics=["accuracy", keras_minent.metrics.PredictiveEntropy()])
    ```
    """

    def __init__(
        self,
        from_logits: bool = True,
        axis: int = -1,
        name: str = "predictive_entropy",
        dtype: Any = None,
    ):
        super().__init__(name=name, dtype=dtype)
        self.from_logits = check_bool("from_logits", from_logits)
        self.axis = check_axis(axis)
        self.total = self.add_variable((), initializer="zeros", name="total")
        self.count = self.add_variable((), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        p, log_p = _probabilities(y_pred, self.from_logits, self.axis)
        h = ops.reshape(-ops.sum(p * log_p, axis=self.axis), (-1,))
        w = _flat_weights(sample_weight, ops.shape(h), h.dtype)
        self.total.assign_add(ops.cast(ops.sum(h * w), self.dtype))
        self.count.assign_add(ops.cast(ops.sum(w), self.dtype))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits, "axis": self.axis}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ExpectedCalibrationError(keras.metrics.Metric):
    """Expected calibration error with equal-width confidence bins.

    Confidence is the largest predicted probability; an example falls in bin
    `m` when its confidence is in `((m - 1) / M, m / M]`. The metric keeps,
    per bin, the summed weights, confidences and correct predictions over all
    batches, and returns
    `ECE = sum_m |correct_m - confidence_m| / sum_m weight_m`, the weighted
    mean gap between accuracy and confidence (not a mean of per-batch ECEs).

    `y_true` holds integer class ids (`(B,)` or `(B, 1)`) or one-hot/soft
    targets (`(B, K)`, their argmax is the class).

    Args:
        num_bins: Number of bins M (>= 1). Defaults to 15.
        from_logits: Whether `y_pred` holds logits.
        axis: The class axis (must be the last one).
        name: Name of the metric.
        dtype: Dtype of the metric's state.

    Raises:
        ValueError: If `num_bins` < 1 or an argument has the wrong type.

    Example:
    ```python
    model.compile(..., metrics=[keras_minent.metrics.ExpectedCalibrationError()])
    ```
    """

    def __init__(
        self,
        num_bins: int = 15,
        from_logits: bool = True,
        axis: int = -1,
        name: str = "ece",
        dtype: Any = None,
    ):
        super().__init__(name=name, dtype=dtype)
        if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1:
            raise ValueError(
                f"Argument `num_bins` must be an integer >= 1. Received: {num_bins!r}"
            )
        self.num_bins = num_bins
        self.from_logits = check_bool("from_logits", from_logits)
        self.axis = check_axis(axis)
        if self.axis != -1:
            raise ValueError("ExpectedCalibrationError supports axis=-1 only.")
        shape = (num_bins,)
        self.weight = self.add_variable(shape, initializer="zeros", name="bin_weight")
        self.confidence = self.add_variable(shape, initializer="zeros", name="bin_confidence")
        self.correct = self.add_variable(shape, initializer="zeros", name="bin_correct")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = to_float32(y_pred)
        p, _ = _probabilities(y_pred, self.from_logits, -1)
        num_classes = y_pred.shape[-1]
        p = ops.reshape(p, (-1, num_classes))
        y_true = ops.convert_to_tensor(y_true)
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == num_classes:
            labels = ops.argmax(ops.reshape(y_true, (-1, num_classes)), axis=-1)
        else:
            labels = ops.reshape(y_true, (-1,))
        conf = ops.max(p, axis=-1)
        correct = ops.cast(
            ops.equal(ops.cast(ops.argmax(p, axis=-1), "int32"), ops.cast(labels, "int32")),
            conf.dtype,
        )
        bins = ops.clip(
            ops.cast(ops.ceil(conf * self.num_bins), "int32") - 1, 0, self.num_bins - 1
        )
        onehot = ops.one_hot(bins, self.num_bins, dtype=conf.dtype)
        w = _flat_weights(sample_weight, ops.shape(conf), conf.dtype)[:, None] * onehot
        self.weight.assign_add(ops.cast(ops.sum(w, axis=0), self.dtype))
        self.confidence.assign_add(ops.cast(ops.sum(w * conf[:, None], axis=0), self.dtype))
        self.correct.assign_add(ops.cast(ops.sum(w * correct[:, None], axis=0), self.dtype))

    def result(self):
        gap = ops.sum(ops.abs(self.correct - self.confidence))
        return ops.divide_no_nan(gap, ops.sum(self.weight))

    def bins(self) -> dict[str, Any]:
        """Per-bin weight, mean confidence and accuracy (NumPy), for reliability diagrams."""
        import numpy as np

        weight = np.asarray(ops.convert_to_numpy(self.weight), np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "edges": np.linspace(0, 1, self.num_bins + 1),
                "weight": weight,
                "confidence": np.asarray(ops.convert_to_numpy(self.confidence)) / weight,
                "accuracy": np.asarray(ops.convert_to_numpy(self.correct)) / weight,
            }

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_bins": self.num_bins,
            "from_logits": self.from_logits,
            "axis": self.axis,
        }
