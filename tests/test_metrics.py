"""Entropy and calibration metrics, temperature scaling, calibration plots."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from keras_minent import calibration
from keras_minent.metrics import ExpectedCalibrationError, PredictiveEntropy

pytestmark = pytest.mark.backend_matrix


def ref_entropy(p, w=None):
    p = np.asarray(p, np.float64)
    h = -np.sum(np.where(p > 0, p * np.log(np.clip(p, 1e-300, 1)), 0.0), -1)
    w = np.ones(len(h)) if w is None else np.asarray(w, np.float64)
    return (h * w).sum() / w.sum()


def ref_ece(p, labels, w=None, m=15):
    p = np.asarray(p, np.float64)
    w = np.ones(len(p)) if w is None else np.asarray(w, np.float64)
    conf, pred = p.max(-1), p.argmax(-1)
    correct = (pred == labels).astype(float)
    total = 0.0
    for b in range(m):
        lo, hi = b / m, (b + 1) / m
        sel = (conf > lo) & (conf <= hi) if b else (conf <= hi)
        if sel.any():
            total += abs((w[sel] * correct[sel]).sum() - (w[sel] * conf[sel]).sum())
    return total / w.sum()


def softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def random_case(seed=0, n=203, k=6):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.5, size=(n, k)).astype("float32")
    labels = rng.integers(0, k, size=n)
    w = rng.uniform(0, 2, size=n)
    w[:7] = 0.0
    return logits, labels, w


def accumulate(metric, labels, y_pred, w, cuts=(0, 17, 18, 120, None)):
    """Feeds the data in uneven batches."""
    edges = [c for c in cuts if c is not None] + [len(labels)]
    for a, b in zip(edges[:-1], edges[1:]):
        metric.update_state(labels[a:b], y_pred[a:b], sample_weight=w[a:b].astype("float32"))
    return float(keras.ops.convert_to_numpy(metric.result()))


@pytest.mark.parametrize("from_logits", [True, False])
def test_predictive_entropy_matches_reference(from_logits):
    logits, labels, w = random_case()
    p = softmax(logits)
    y_pred = logits if from_logits else p.astype("float32")
    got = accumulate(PredictiveEntropy(from_logits=from_logits), labels, y_pred, w)
    assert got == pytest.approx(ref_entropy(p, w), rel=1e-5)


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("num_bins", [15, 4])
def test_ece_matches_reference_over_uneven_batches(from_logits, num_bins):
    logits, labels, w = random_case(1)
    p = softmax(logits)
    y_pred = logits if from_logits else p.astype("float32")
    metric = ExpectedCalibrationError(num_bins=num_bins, from_logits=from_logits)
    got = accumulate(metric, labels, y_pred, w)
    assert got == pytest.approx(ref_ece(p, labels, w, num_bins), rel=1e-4, abs=1e-6)
    # One-hot targets give the same value.
    metric2 = ExpectedCalibrationError(num_bins=num_bins, from_logits=from_logits)
    onehot = np.eye(6, dtype="float32")[labels]
    assert accumulate(metric2, onehot, y_pred, w) == pytest.approx(got, rel=1e-6)


def test_probabilities_exactly_zero_and_one():
    p = np.array([[1, 0, 0], [0, 1, 0], [0.5, 0.5, 0], [0, 0, 1]], "float32")
    labels = np.array([0, 0, 1, 2])
    h = PredictiveEntropy(from_logits=False)
    h.update_state(labels, p)
    assert float(h.result()) == pytest.approx(ref_entropy(p), abs=1e-6)
    e = ExpectedCalibrationError(from_logits=False)
    e.update_state(labels, p)
    assert math.isfinite(float(e.result()))
    assert float(e.result()) == pytest.approx(ref_ece(p, labels), abs=1e-6)


def test_ece_of_calibrated_and_overconfident_predictors():
    rng = np.random.default_rng(0)
    n, k = 40_000, 4
    conf = rng.uniform(0.3, 1.0, size=n)  # top-class probability
    top = rng.integers(0, k, size=n)
    p = np.full((n, k), 0.0)
    p[np.arange(n), top] = conf
    for j in range(1, k):
        p[np.arange(n), (top + j) % k] = (1 - conf) / (k - 1)
    right = rng.uniform(size=n) < conf  # calibrated: right with probability conf
    labels = np.where(right, top, (top + 1) % k)
    calibrated = ExpectedCalibrationError(from_logits=False)
    calibrated.update_state(labels, p.astype("float32"))
    assert float(calibrated.result()) < 0.01
    # Over-confident: right only with probability conf - 0.2: the gap is 0.2.
    right = rng.uniform(size=n) < conf - 0.2
    labels = np.where(right, top, (top + 1) % k)
    over = ExpectedCalibrationError(from_logits=False)
    over.update_state(labels, p.astype("float32"))
    assert float(over.result()) == pytest.approx(0.2, abs=0.01)


def test_temperature_scaling_recovers_a_known_temperature(tmp_path):
    rng = np.random.default_rng(0)
    n, k, true_t = 20_000, 10, 2.5
    true_logits = rng.normal(0, 3, size=(n, k))
    labels = np.array([rng.choice(k, p=q) for q in softmax(true_logits)])
    model_logits = true_logits * true_t  # an over-confident model: T = 2.5 undoes it
    t = calibration.fit_temperature(model_logits, labels)
    assert t == pytest.approx(true_t, rel=0.05)
    # The calibrated model: lower NLL and ECE, saves and loads.
    inputs = keras.Input((k,))
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    calibrated, report = calibration.calibrate(model, model_logits.astype("float32"), labels)
    assert report["nll_after"] < report["nll_before"]
    assert report["ece_after"] < report["ece_before"]
    calibrated.save(tmp_path / "c.keras")
    loaded = keras.saving.load_model(tmp_path / "c.keras")
    x = model_logits[:5].astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), x / report["temperature"], rtol=1e-6
    )


def test_plots_are_png(tmp_path):
    logits, labels, _ = random_case(3)
    ece_value = calibration.plot_reliability(logits, labels, str(tmp_path / "r.png"), title="t")
    mean_h = calibration.plot_entropy_histogram(logits, str(tmp_path / "h.png"))
    for name in ("r.png", "h.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ece_value == pytest.approx(ref_ece(softmax(logits), labels), rel=1e-4)
    assert mean_h == pytest.approx(ref_entropy(softmax(logits)), rel=1e-6)


def test_metrics_in_fit_and_serialization(tmp_path):
    x = np.random.default_rng(0).normal(size=(64, 5)).astype("float32")
    y = np.arange(64) % 3
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[PredictiveEntropy(), ExpectedCalibrationError(num_bins=10)],
    )
    hist = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert {"predictive_entropy", "ece"} <= set(hist.history)
    for m in (PredictiveEntropy(from_logits=False, name="h"), ExpectedCalibrationError(7)):
        clone = type(m).from_config(m.get_config())
        assert clone.get_config() == m.get_config()
    with pytest.raises(ValueError, match="num_bins"):
        ExpectedCalibrationError(num_bins=0)
    model.save(tmp_path / "m.keras")
    keras.saving.load_model(tmp_path / "m.keras")


def _drawn(monkeypatch):
    """Captures the figures the plot functions save, drawn (their tick labels set)."""
    from keras_minent import _plotting

    figures = []

    def keep(fig, path):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig).draw()
        figures.append(fig)

    monkeypatch.setattr(_plotting, "save", keep)
    return figures


def _labels(axis) -> list[str]:
    ticks = axis.get_major_ticks() + axis.get_minor_ticks()
    return [t.label1.get_text() for t in ticks if t.label1.get_visible() and t.label1.get_text()]


def test_entropy_histogram_reads_as_counts_and_names_the_largest_possible(monkeypatch):
    pytest.importorskip("matplotlib")
    figures = _drawn(monkeypatch)
    logits = np.zeros((3, 26))
    logits[0, 0] = logits[1, 0] = 5.0  # two equal entropies: counts 2 and 1
    calibration.plot_entropy_histogram(logits, "unused.png", title="t")
    (ax,) = figures[0].axes
    low, high = ax.get_ylim()
    shown = [text for text in _labels(ax.yaxis) if low <= float(text.replace(",", "")) <= high]
    assert shown == ["1", "2"]
    assert "largest possible: ln 26 = 3.26" in ax.get_title()
    assert "largest 3.26 " in ax.get_title()  # the uniform row: ln 26 itself


def test_curves_name_the_selected_epoch_in_the_legend(monkeypatch):
    pytest.importorskip("matplotlib")
    from keras_minent.training import reporting

    figures = _drawn(monkeypatch)
    history = {"loss": [2.0, 1.0], "val_loss": [2.5, 1.5], "accuracy": [0.5, 0.9]}
    history |= {"val_accuracy": [0.4, 0.8], "learning_rate": [0.005, 0.0005]}
    reporting.plot_curves(history, "unused.png", "t", selected_epoch=2)
    for ax in figures[0].axes:
        assert len(ax.texts) == 0  # no label drawn beside the line, where the legend goes
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend[-1] == "selected: epoch 2", legend
    lr_labels = _labels(figures[0].axes[2].yaxis)
    assert "0.005" in lr_labels and not any("10^" in t or "times" in t for t in lr_labels)
