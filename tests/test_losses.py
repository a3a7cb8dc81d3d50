"""MinEntLoss / MixEntLoss against an independent float64 NumPy reference."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from keras_minent import PAPER_SETTINGS, MinEntLoss, MixEntLoss
from keras_minent import losses as L
from keras_minent.testing import (
    REF_BATCH,
    REF_CLASSES,
    gradient,
    reference_case,
    rel_err,
)
from keras_minent.testing import reference_data as rng_data
from keras_minent.testing import reference_loss as ref_loss

pytestmark = pytest.mark.backend_matrix

K = REF_CLASSES
B = REF_BATCH
KINDS = ["min_ent", "mix_ent"]
RTOL = 1e-5


# ---------------------------------------------------------------- exactness


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("fmt", ["int", "int_col", "onehot", "soft"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("bases", [(math.e, math.e), (2.02, 10.73)])
def test_matches_float64_reference(kind, from_logits, fmt, smoothing, bases):
    got, want, y_true, y_pred, kwargs = reference_case(kind, from_logits, fmt, smoothing, bases)
    assert got.shape == (B,)
    assert rel_err(got, want) < RTOL
    # The default reduction is the mean over the batch.
    mean = L.get(kind, **{k: v for k, v in kwargs.items() if k != "reduction"})
    assert rel_err(keras.ops.convert_to_numpy(mean(y_true, y_pred)), want.mean()) < RTOL


# Hand-computed values: derived on paper, not from the float64 reference, so that the
# code and its reference cannot share a mistake. Two classes unless said otherwise.
LN2, LN3, LN10 = math.log(2), math.log(3), math.log(10)
HAND_CASES = [
    # logits [0, 0]: p = (1/2, 1/2). Label 0: CE = -ln(1/2) = ln 2; H = ln 2.
    # entropy_weight 0.5: ln 2 + 0.5 ln 2 = 1.5 ln 2.
    ("min_ent", {"entropy_weight": 0.5}, [0], [[0.0, 0.0]], True, 1.5 * LN2),
    # The same in bits (both log bases 2): CE = 1 bit, H = 1 bit: 1 + 1 = 2.
    (
        "min_ent",
        {"entropy_weight": 1.0, "ce_log_base": 2, "entropy_log_base": 2},
        [1],
        [[0.0, 0.0]],
        True,
        2.0,
    ),
    # logits [ln 3, 0]: p = (3/4, 1/4); the same as probabilities [0.75, 0.25]. Label 1:
    # CE = -ln(1/4) = 2 ln 2; H = -(3/4 ln(3/4) + 1/4 ln(1/4)) = 2 ln 2 - (3/4) ln 3.
    # Weight 1: 4 ln 2 - (3/4) ln 3.
    ("min_ent", {"entropy_weight": 1.0}, [1], [[LN3, 0.0]], True, 4 * LN2 - 0.75 * LN3),
    ("min_ent", {"entropy_weight": 1.0}, [1], [[0.75, 0.25]], False, 4 * LN2 - 0.75 * LN3),
    # logits [0, 0], label 0, epsilon 1e-6: CE = ln 2;
    # SCE = -(1/2) ln(1 + 1e-6) - (1/2) ln(1e-6) = 3 ln 10 - (1/2) ln(1 + 1e-6).
    (
        "mix_ent",
        {"swapped_weight": 1.0},
        [0],
        [[0.0, 0.0]],
        True,
        LN2 + 3 * LN10 - 0.5 * math.log1p(1e-6),
    ),
    # p = (3/4, 1/4), label 0, CE in bits: log2(4/3) = 2 - ln 3 / ln 2;
    # SCE = -(3/4) ln(1 + 1e-6) - (1/4) ln(1e-6) = 1.5 ln 10 - 0.75 ln(1 + 1e-6); weight 0.5.
    (
        "mix_ent",
        {"swapped_weight": 0.5, "ce_log_base": 2},
        [0],
        [[LN3, 0.0]],
        True,
        2 - LN3 / LN2 + 0.5 * (1.5 * LN10 - 0.75 * math.log1p(1e-6)),
    ),
    # Soft target (1/2, 1/2), epsilon 1/2: log(t + eps) = log 1 = 0, so SCE = 0 and the
    # loss is CE = ln 2 for logits [0, 0], whatever the swapped weight.
    ("mix_ent", {"swapped_weight": 3.0, "epsilon": 0.5}, [[0.5, 0.5]], [[0.0, 0.0]], True, LN2),
]


@pytest.mark.parametrize("kind, kwargs, y_true, y_pred, from_logits, want", HAND_CASES)
def test_hand_computed_values(kind, kwargs, y_true, y_pred, from_logits, want):
    cls = MinEntLoss if kind == "min_ent" else MixEntLoss
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred, "float32")
    loss = cls(from_logits=from_logits, reduction=None, **kwargs)
    assert rel_err(keras.ops.convert_to_numpy(loss(y_true, y_pred)), [want]) < RTOL
    fn = L.min_ent if kind == "min_ent" else L.mix_ent
    got = fn(y_true, y_pred, from_logits=from_logits, **kwargs)
    assert rel_err(keras.ops.convert_to_numpy(got), [want]) < RTOL


def test_hand_computed_terms():
    # Four equal logits: p = 1/4 each, H = ln 4. Label 2 smoothed by 0.2:
    # t = 0.8 * onehot + 0.2 / 4; sum t = 1, so CE = -sum t ln(1/4) = ln 4.
    z = np.zeros((1, 4), "float32")
    assert rel_err(keras.ops.convert_to_numpy(L.entropy(z, from_logits=True)), [2 * LN2]) < RTOL
    ce_only = L.get("ce", from_logits=True, label_smoothing=0.2, reduction=None)
    assert rel_err(keras.ops.convert_to_numpy(ce_only(np.array([2]), z)), [2 * LN2]) < RTOL
    # One-hot target, p_y = 1/4: SCE = -ln(1e-6) * 3/4 - ln(1 + 1e-6) / 4.
    sce = L.swapped_cross_entropy(np.array([2]), z, from_logits=True)
    want = 4.5 * LN10 - 0.25 * math.log1p(1e-6)
    assert rel_err(keras.ops.convert_to_numpy(sce), [want]) < RTOL


@pytest.mark.parametrize("eps", [1e-6, 1e-3, 0.5])
def test_mix_ent_epsilon_and_closed_form(eps):
    labels, logits = rng_data(3)
    loss = MixEntLoss(1.0, ce_weight=0.0, epsilon=eps, from_logits=True, reduction=None)
    got = keras.ops.convert_to_numpy(loss(labels, logits))
    p = np.exp(ref_loss("min_ent", np.eye(K)[labels], logits, True, 0, 1, math.e, math.e) * -1)
    closed = -math.log(eps) * (1 - p) - math.log(1 + eps) * p  # the closed form of docs/method.md
    assert rel_err(got, closed) < 1e-4
    want = ref_loss("mix_ent", np.eye(K)[labels], logits, True, 1.0, 0.0, math.e, math.e, eps=eps)
    assert rel_err(got, want) < RTOL


@pytest.mark.parametrize("kind", KINDS)
def test_axis_other_than_last(kind):
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(4, K, 3)).astype("float32")  # classes on axis 1
    labels = rng.integers(0, K, size=(4, 3))
    loss = L.get(kind, 0.5, from_logits=True, axis=1, reduction=None)
    got = keras.ops.convert_to_numpy(loss(labels, logits))
    t = np.moveaxis(np.eye(K)[labels], -1, 1)
    want = ref_loss(kind, t, logits, True, 0.5, 1.0, math.e, math.e, axis=1)
    assert got.shape == (4, 3)
    assert rel_err(got, want) < RTOL
    # Distribution targets on axis 1 give the same values.
    got2 = keras.ops.convert_to_numpy(loss(t.astype("float32"), logits))
    assert rel_err(got2, want) < RTOL


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_zero_regularizer_equals_keras_cross_entropy_exactly(kind, from_logits, smoothing):
    labels, y_pred = rng_data(7, from_logits=from_logits)
    onehot = np.eye(K, dtype="float32")[labels]
    ours = L.get(kind, 0.0, from_logits=from_logits, label_smoothing=smoothing)
    cce = keras.losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=smoothing)
    a = keras.ops.convert_to_numpy(ours(onehot, y_pred))
    b = keras.ops.convert_to_numpy(cce(onehot, y_pred))
    assert a == b
    # Integer labels give the same value as their one-hot encoding.
    assert rel_err(keras.ops.convert_to_numpy(ours(labels, y_pred)), b) < 1e-6


def test_terms_and_functions():
    labels, logits = rng_data(11)
    onehot = np.eye(K)[labels]
    h = keras.ops.convert_to_numpy(L.entropy(logits, from_logits=True))
    assert rel_err(h, ref_loss("min_ent", onehot, logits, True, 1, 0, math.e, math.e)) < RTOL
    assert (
        abs(float(L.entropy(np.zeros((1, 2), "float32"), from_logits=True)[0]) - math.log(2))
        < 1e-6
    )
    sce = keras.ops.convert_to_numpy(L.swapped_cross_entropy(labels, logits, from_logits=True))
    assert rel_err(sce, ref_loss("mix_ent", onehot, logits, True, 1, 0, math.e, math.e)) < RTOL
    me = keras.ops.convert_to_numpy(
        L.min_ent(labels, logits, entropy_weight=0.3, from_logits=True)
    )
    assert rel_err(me, ref_loss("min_ent", onehot, logits, True, 0.3, 1, math.e, math.e)) < RTOL
    xe = keras.ops.convert_to_numpy(
        L.mix_ent(labels, logits, swapped_weight=0.3, from_logits=True)
    )
    assert rel_err(xe, ref_loss("mix_ent", onehot, logits, True, 0.3, 1, math.e, math.e)) < RTOL


def test_paper_settings_by_name():
    m = MinEntLoss.from_paper(from_logits=True)
    assert (m.ce_log_base, m.entropy_log_base, m.ce_weight, m.entropy_weight) == (
        2.02,
        10.73,
        0.839,
        0.308,
    )
    x = MixEntLoss.from_paper(from_logits=True, epsilon=1e-4)
    assert (x.ce_log_base, x.swapped_log_base, x.ce_weight, x.swapped_weight) == (
        12.58,
        12.45,
        0.717,
        0.943,
    )
    assert x.epsilon == 1e-4 and x.from_logits
    assert PAPER_SETTINGS["min_ent"]["entropy_weight"] == 0.308


# ---------------------------------------------------------------- stability


def analytic_grad(kind, labels, logits, w_reg, eps=1e-6):
    z = np.asarray(logits, np.float64)
    log_p = z - z.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    p = np.exp(log_p)
    t = np.eye(z.shape[-1])[labels]
    g = p - t
    if kind == "min_ent":
        h = -(p * log_p).sum(-1, keepdims=True)
        g += w_reg * (-p * (log_p + h))
    else:
        a = np.log(t + eps)
        g += w_reg * (-p * (a - (p * a).sum(-1, keepdims=True)))
    return g


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_matches_analytic(kind):
    labels, logits = rng_data(13)
    loss = L.get(kind, 0.4, from_logits=True, reduction="sum")
    g = gradient(lambda z: loss(labels, z), logits)
    want = analytic_grad(kind, labels, logits, 0.4)
    assert np.max(np.abs(g - want)) < 1e-4 * max(1.0, np.max(np.abs(want)))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_huge_logits_are_finite(kind, scale):
    labels, logits = rng_data(17)
    logits = np.sign(logits) * scale + logits  # magnitude ~1e4, distinct values
    loss = L.get(kind, 0.5, from_logits=True)
    value = float(keras.ops.convert_to_numpy(loss(labels, logits)))
    g = gradient(lambda z: loss(labels, z), logits)
    assert math.isfinite(value)
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("kind", KINDS)
def test_probabilities_exactly_zero_and_one(kind):
    probs = np.zeros((4, K), "float32")
    probs[0, 0] = 1.0  # right and certain
    probs[1, 3] = 1.0  # wrong and certain
    probs[2, :2] = 0.5
    probs[3, :] = 1.0 / K
    labels = np.array([0, 0, 1, 2])
    loss = L.get(kind, 0.5, from_logits=False, reduction=None)
    value = keras.ops.convert_to_numpy(loss(labels, probs))
    g = gradient(lambda p: loss(labels, p), probs)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(g))
    want = ref_loss(kind, np.eye(K)[labels], probs, False, 0.5, 1.0, math.e, math.e)
    assert rel_err(value, want) < RTOL


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("kind", KINDS)
def test_mixed_precision_computes_in_float32(policy, kind):
    keras.config.set_dtype_policy(policy)
    loss = L.get(kind, 0.5, from_logits=True, reduction=None)
    assert loss.dtype == "float32"
    labels, logits = rng_data(19)
    half = keras.ops.cast(logits * 1000.0, policy.split("_")[1])  # |z| up to ~1e4
    out = loss(labels, half)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    ref_in = keras.ops.convert_to_numpy(keras.ops.cast(half, "float32"))
    want = ref_loss(kind, np.eye(K)[labels], ref_in, True, 0.5, 1.0, math.e, math.e)
    assert rel_err(keras.ops.convert_to_numpy(out), want) < RTOL
    # The per-example functions upcast too.
    fn = L.min_ent if kind == "min_ent" else L.mix_ent
    out_fn = fn(labels, half, 0.5, from_logits=True)
    assert keras.backend.standardize_dtype(out_fn.dtype) == "float32"
    # A model under the policy trains with finite loss.
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(K, dtype="float32")])
    model.compile("sgd", L.get(kind, 0.5, from_logits=True))
    x = np.random.default_rng(0).normal(size=(16, 5)).astype("float32")
    hist = model.fit(x, labels[:16] if len(labels) >= 16 else np.resize(labels, 16), verbose=0)
    assert math.isfinite(hist.history["loss"][0])
