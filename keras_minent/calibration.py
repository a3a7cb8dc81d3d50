"""Post-hoc temperature scaling, calibration reports and plots.

MIN-ENT makes a classifier more confident; when that over-confidence hurts,
divide the logits by one temperature `T` fitted on validation data
(Guo et al., 2017). Accuracy does not change (argmax is unchanged).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from keras_minent import _plotting
from keras_minent.losses import PACKAGE
from keras_minent.metrics import ExpectedCalibrationError


@keras.saving.register_keras_serializable(package=PACKAGE)
class TemperatureScaling(keras.layers.Layer):
    """Divides logits by a fixed temperature (float32 output).

    Args:
        temperature: T > 0.
        **kwargs: Base layer arguments.

    Raises:
        ValueError: If `temperature` <= 0 or not finite.
    """

    def __init__(self, temperature: float, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        temperature = float(temperature)
        if not math.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"`temperature` must be finite and > 0. Received: {temperature}")
        self.temperature = temperature

    def call(self, logits):
        return keras.ops.cast(logits, "float32") / self.temperature

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature}


def _log_softmax64(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def entropies(logits: np.ndarray) -> np.ndarray:
    """Predictive entropy (nats, float64) of each row of `logits`."""
    log_p = _log_softmax64(logits)
    return -(np.exp(log_p) * log_p).sum(-1)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of integer `labels` under `softmax(logits / T)`."""
    log_p = _log_softmax64(np.asarray(logits, np.float64) / temperature)
    return float(-log_p[np.arange(len(labels)), np.asarray(labels, int)].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, bounds=(0.05, 20.0)) -> float:
    """The temperature minimising the NLL of `labels` (float64, no gradient tricks).

    The NLL is convex in `1/T`; a golden-section search on `log T` over
    `bounds` followed by refinement finds its minimum to about 1e-6 relative.

    Args:
        logits: `(N, K)` validation logits.
        labels: `(N,)` integer labels.
        bounds: Search interval for T.

    Returns:
        The fitted temperature.

    Raises:
        ValueError: If the inputs are empty or their shapes disagree.
    """
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels).reshape(-1)
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) == 0:
        raise ValueError(
            f"Expected logits (N, K) and labels (N,); got {logits.shape} and {labels.shape}."
        )
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    f = lambda log_t: nll(logits, labels, math.exp(log_t))  # noqa: E731
    g = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(80):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return math.exp((a + b) / 2)


def ece(probs_or_logits: np.ndarray, labels: np.ndarray, num_bins: int = 15, from_logits=True):
    """ECE of a whole set at once (same definition as the metric)."""
    metric = ExpectedCalibrationError(num_bins=num_bins, from_logits=from_logits)
    metric.update_state(np.asarray(labels), np.asarray(probs_or_logits, np.float32))
    return float(keras.ops.convert_to_numpy(metric.result())), metric.bins()


def calibrate(
    model: keras.Model,
    x_val,
    y_val,
    num_bins: int = 15,
    batch_size: int = 1000,
) -> tuple[keras.Model, dict[str, float]]:
    """Fits a temperature on validation data and returns the calibrated model.

    Args:
        model: A model that outputs logits.
        x_val: Validation inputs.
        y_val: Integer validation labels.
        num_bins: Bins of the ECE.
        batch_size: Prediction batch size.

    Returns:
        `(calibrated_model, report)`: the model followed by
        `TemperatureScaling(T)` (saves and loads like any model), and
        `{"temperature", "nll_before", "nll_after", "ece_before", "ece_after"}`.
    """
    logits = np.asarray(model.predict(x_val, batch_size=batch_size, verbose=0), np.float64)
    labels = np.asarray(y_val).reshape(-1)
    t = fit_temperature(logits, labels)
    report = {
        "temperature": t,
        "nll_before": nll(logits, labels),
        "nll_after": nll(logits, labels, t),
        "ece_before": ece(logits, labels, num_bins)[0],
        "ece_after": ece(logits / t, labels, num_bins)[0],
    }
    inputs = keras.Input(model.input_shape[1:], name="image")
    outputs = TemperatureScaling(t, name="temperature_scaling")(model(inputs))
    calibrated = keras.Model(inputs, outputs, name=f"{model.name}_calibrated")
    return calibrated, report


def plot_reliability(logits, labels, path: str, num_bins: int = 15, title: str = "") -> float:
    """Writes a reliability diagram as a PNG; returns the ECE.

    Top: each bin's accuracy (bar) against its mean confidence (the hatched
    gap reaches from one to the other); the diagonal is perfect
    calibration. Bottom: how many examples each bin holds, so a
    large gap in an almost empty bin is read as such.

    Args:
        logits: `(N, K)` logits.
        labels: `(N,)` integer labels.
        path: The PNG file to write.
        num_bins: Equal-width confidence bins.
        title: Title of the figure.

    Returns:
        The expected calibration error.

    Raises:
        MissingExtraError: If matplotlib is not installed.
    """
    value, bins = ece(logits, labels, num_bins)
    edges = bins["edges"]
    centers, width = (edges[:-1] + edges[1:]) / 2, 1 / num_bins
    filled = bins["weight"] > 0
    acc, conf = bins["accuracy"][filled], bins["confidence"][filled]
    fig = _plotting.figure(5, 6.5)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.bar(centers[filled], acc, width=width, edgecolor="k", alpha=0.7, label="accuracy")
    top.bar(
        centers[filled],
        conf - acc,
        bottom=acc,
        width=width,
        facecolor="none",
        hatch="//",
        edgecolor="tab:red",
        label="gap to mean confidence",
    )
    top.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    top.set(xlim=(edges[0], 1), ylim=(0, 1), ylabel="accuracy")
    # Over the figure, not the axes (whose centre is off the figure's): long notes fit.
    fig.suptitle(_plotting.wrap(f"{title}\nECE = {100 * value:.2f}%", 66), fontsize=9)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(centers, bins["weight"], width=width, edgecolor="k", color="tab:gray")
    bottom.set(xlabel="confidence (largest probability)", ylabel="examples")
    _plotting.save(fig, path)
    return value


def plot_entropy_histogram(logits, path: str, title: str = "") -> float:
    """Writes a histogram of the predictive entropy as a PNG; returns the mean entropy.

    Raises:
        MissingExtraError: If matplotlib is not installed.
    """
    h = entropies(logits)
    num_classes = np.shape(logits)[-1]
    fig = _plotting.figure(6, 4)
    ax = fig.subplots()
    counts, _, _ = ax.hist(h, bins=50, log=True)
    ax.set_ylim(0.7, max(3.0, 1.5 * counts.max()))  # counts: nothing below one example
    _plotting.plain_log_labels(ax.yaxis, counts=True)
    ax.set(xlabel="predictive entropy (nats)", ylabel="examples")
    summary = (
        f"mean {h.mean():.4f} nats, largest {h.max():.2f} "
        f"(largest possible: ln {num_classes} = {math.log(num_classes):.2f})"
    )
    ax.set_title(_plotting.wrap(f"{title}\n{summary}", 80), fontsize=9)
    _plotting.save(fig, path)
    return float(h.mean())
