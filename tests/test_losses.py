"""MinEntLoss / MixEntLoss against an independent float64 NumPy reference."""

from __future__ import annotations

import math
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_minent
from keras_minent import PAPER_SETTINGS, MinEntLoss, MixEntLoss
from keras_minent import losses as L
from keras_minent.testing import BACKEND, gradient, run_python

pytestmark = pytest.mark.backend_matrix

K = 7
B = 12
RTOL = 1e-5


# ---------------------------------------------------------------- reference


def ref_loss(kind, t, y_pred, from_logits, w_reg, w_ce, b_ce, b_reg, eps=1e-6, axis=-1):
    """float64 NumPy: per-example MIN-ENT / MIX-ENT, written from PAPER.md."""
    y = np.moveaxis(np.asarray(y_pred, np.float64), axis, -1)
    t = np.moveaxis(np.asarray(t, np.float64), axis, -1)
    if from_logits:
        m = y.max(-1, keepdims=True)
        log_p = y - m - np.log(np.exp(y - m).sum(-1, keepdims=True))
        p = np.exp(log_p)
    else:  # as keras.losses.categorical_crossentropy: normalise, clip, log
        p = y / y.sum(-1, keepdims=True)
        log_p = np.log(np.clip(p, 1e-7, 1 - 1e-7))
    ce = -(t * log_p).sum(-1)
    if kind == "min":
        reg = -(p * log_p).sum(-1)
    else:
        reg = -(p * np.log(t + eps)).sum(-1)
    return w_ce * ce / math.log(b_ce) + w_reg * reg / math.log(b_reg)


def make_loss(kind, **kw):
    if kind == "min":
        if "reg_weight" in kw:
            kw["entropy_weight"] = kw.pop("reg_weight")
        if "reg_base" in kw:
            kw["entropy_log_base"] = kw.pop("reg_base")
        return MinEntLoss(**kw)
    if "reg_weight" in kw:
        kw["swapped_weight"] = kw.pop("reg_weight")
    if "reg_base" in kw:
        kw["swapped_log_base"] = kw.pop("reg_base")
    return MixEntLoss(**kw)


def rng_data(seed=0, b=B, k=K, from_logits=True):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, size=b)
    logits = rng.normal(0, 3, size=(b, k)).astype("float32")
    if from_logits:
        return labels, logits
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return labels, probs.astype("float32")


def targets(labels, fmt, k=K, seed=1):
    onehot = np.eye(k, dtype="float32")[labels]
    if fmt == "int":
        return labels, onehot
    if fmt == "int_col":
        return labels[:, None], onehot
    if fmt == "onehot":
        return onehot, onehot
    soft = np.random.default_rng(seed).dirichlet(np.ones(k), size=len(labels)).astype("float32")
    return soft, soft


def reference_case(kind, from_logits, fmt, smoothing, bases, seed=0):
    """Per-example loss and its float64 reference for one case of the exactness sweep.

    Returns:
        `(got, want, y_true, y_pred, loss_kwargs)`. Also used by
        `benchmarks/loss_exactness.py`.
    """
    labels, y_pred = rng_data(seed, from_logits=from_logits)
    y_true, dist = targets(labels, fmt)
    t = dist * (1 - smoothing) + smoothing / K
    kwargs = {
        "reg_weight": 0.37,
        "ce_weight": 0.8,
        "ce_log_base": bases[0],
        "reg_base": bases[1],
        "from_logits": from_logits,
        "label_smoothing": smoothing,
        "reduction": None,
    }
    got = keras.ops.convert_to_numpy(make_loss(kind, **kwargs)(y_true, y_pred))
    want = ref_loss(kind, t, y_pred, from_logits, 0.37, 0.8, *bases)
    return got, want, y_true, y_pred, kwargs


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-2))  # abs. 1e-7 near 0


# ---------------------------------------------------------------- exactness


@pytest.mark.parametrize("kind", ["min", "mix"])
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("fmt", ["int", "int_col", "onehot", "soft"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("bases", [(math.e, math.e), (2.02, 10.73)])
def test_matches_float64_reference(kind, from_logits, fmt, smoothing, bases):
    got, want, y_true, y_pred, kwargs = reference_case(kind, from_logits, fmt, smoothing, bases)
    assert got.shape == (B,)
    assert rel_err(got, want) < RTOL
    # The default reduction is the mean over the batch.
    mean = make_loss(kind, **{k: v for k, v in kwargs.items() if k != "reduction"})
    assert rel_err(keras.ops.convert_to_numpy(mean(y_true, y_pred)), want.mean()) < RTOL


@pytest.mark.parametrize("eps", [1e-6, 1e-3, 0.5])
def test_mix_ent_epsilon_and_closed_form(eps):
    labels, logits = rng_data(3)
    loss = MixEntLoss(1.0, ce_weight=0.0, epsilon=eps, from_logits=True, reduction=None)
    got = keras.ops.convert_to_numpy(loss(labels, logits))
    p = np.exp(ref_loss("min", np.eye(K)[labels], logits, True, 0, 1, math.e, math.e) * -1)
    closed = -math.log(eps) * (1 - p) - math.log(1 + eps) * p  # PAPER.md closed form
    assert rel_err(got, closed) < 1e-4
    want = ref_loss("mix", np.eye(K)[labels], logits, True, 1.0, 0.0, math.e, math.e, eps=eps)
    assert rel_err(got, want) < RTOL


@pytest.mark.parametrize("kind", ["min", "mix"])
def test_axis_other_than_last(kind):
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(4, K, 3)).astype("float32")  # classes on axis 1
    labels = rng.integers(0, K, size=(4, 3))
    loss = make_loss(kind, reg_weight=0.5, from_logits=True, axis=1, reduction=None)
    got = keras.ops.convert_to_numpy(loss(labels, logits))
    t = np.moveaxis(np.eye(K)[labels], -1, 1)
    want = ref_loss(kind, t, logits, True, 0.5, 1.0, math.e, math.e, axis=1)
    assert got.shape == (4, 3)
    assert rel_err(got, want) < RTOL
    # Distribution targets on axis 1 give the same values.
    got2 = keras.ops.convert_to_numpy(loss(t.astype("float32"), logits))
    assert rel_err(got2, want) < RTOL


@pytest.mark.parametrize("kind", ["min", "mix"])
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_zero_regularizer_equals_keras_cross_entropy_exactly(kind, from_logits, smoothing):
    labels, y_pred = rng_data(7, from_logits=from_logits)
    onehot = np.eye(K, dtype="float32")[labels]
    ours = make_loss(kind, reg_weight=0.0, from_logits=from_logits, label_smoothing=smoothing)
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
    assert rel_err(h, ref_loss("min", onehot, logits, True, 1, 0, math.e, math.e)) < RTOL
    assert (
        abs(float(L.entropy(np.zeros((1, 2), "float32"), from_logits=True)[0]) - math.log(2))
        < 1e-6
    )
    sce = keras.ops.convert_to_numpy(L.swapped_cross_entropy(labels, logits, from_logits=True))
    assert rel_err(sce, ref_loss("mix", onehot, logits, True, 1, 0, math.e, math.e)) < RTOL
    me = keras.ops.convert_to_numpy(
        L.min_ent(labels, logits, entropy_weight=0.3, from_logits=True)
    )
    assert rel_err(me, ref_loss("min", onehot, logits, True, 0.3, 1, math.e, math.e)) < RTOL
    xe = keras.ops.convert_to_numpy(
        L.mix_ent(labels, logits, swapped_weight=0.3, from_logits=True)
    )
    assert rel_err(xe, ref_loss("mix", onehot, logits, True, 0.3, 1, math.e, math.e)) < RTOL


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
    if kind == "min":
        h = -(p * log_p).sum(-1, keepdims=True)
        g += w_reg * (-p * (log_p + h))
    else:
        a = np.log(t + eps)
        g += w_reg * (-p * (a - (p * a).sum(-1, keepdims=True)))
    return g


@pytest.mark.parametrize("kind", ["min", "mix"])
def test_gradient_matches_analytic(kind):
    labels, logits = rng_data(13)
    loss = make_loss(kind, reg_weight=0.4, from_logits=True, reduction="sum")
    g = gradient(lambda z: loss(labels, z), logits)
    want = analytic_grad(kind, labels, logits, 0.4)
    assert np.max(np.abs(g - want)) < 1e-4 * max(1.0, np.max(np.abs(want)))


@pytest.mark.parametrize("kind", ["min", "mix"])
@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_huge_logits_are_finite(kind, scale):
    labels, logits = rng_data(17)
    logits = np.sign(logits) * scale + logits  # magnitude ~1e4, distinct values
    loss = make_loss(kind, reg_weight=0.5, from_logits=True)
    value = float(keras.ops.convert_to_numpy(loss(labels, logits)))
    g = gradient(lambda z: loss(labels, z), logits)
    assert math.isfinite(value)
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("kind", ["min", "mix"])
def test_probabilities_exactly_zero_and_one(kind):
    probs = np.zeros((4, K), "float32")
    probs[0, 0] = 1.0  # right and certain
    probs[1, 3] = 1.0  # wrong and certain
    probs[2, :2] = 0.5
    probs[3, :] = 1.0 / K
    labels = np.array([0, 0, 1, 2])
    loss = make_loss(kind, reg_weight=0.5, from_logits=False, reduction=None)
    value = keras.ops.convert_to_numpy(loss(labels, probs))
    g = gradient(lambda p: loss(labels, p), probs)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(g))
    want = ref_loss(kind, np.eye(K)[labels], probs, False, 0.5, 1.0, math.e, math.e)
    assert rel_err(value, want) < RTOL


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("kind", ["min", "mix"])
def test_mixed_precision_computes_in_float32(policy, kind):
    keras.config.set_dtype_policy(policy)
    loss = make_loss(kind, reg_weight=0.5, from_logits=True, reduction=None)
    assert loss.dtype == "float32"
    labels, logits = rng_data(19)
    half = keras.ops.cast(logits * 1000.0, policy.split("_")[1])  # |z| up to ~1e4
    out = loss(labels, half)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    ref_in = keras.ops.convert_to_numpy(keras.ops.cast(half, "float32"))
    want = ref_loss(kind, np.eye(K)[labels], ref_in, True, 0.5, 1.0, math.e, math.e)
    assert rel_err(keras.ops.convert_to_numpy(out), want) < RTOL
    # The per-example functions upcast too.
    fn = L.min_ent if kind == "min" else L.mix_ent
    out_fn = fn(labels, half, 0.5, from_logits=True)
    assert keras.backend.standardize_dtype(out_fn.dtype) == "float32"
    # A model under the policy trains with finite loss.
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(K, dtype="float32")])
    model.compile("sgd", make_loss(kind, reg_weight=0.5, from_logits=True))
    x = np.random.default_rng(0).normal(size=(16, 5)).astype("float32")
    hist = model.fit(x, labels[:16] if len(labels) >= 16 else np.resize(labels, 16), verbose=0)
    assert math.isfinite(hist.history["loss"][0])


# ---------------------------------------------------------------- Keras-native


@pytest.mark.parametrize("kind", ["min", "mix"])
def test_reductions_and_sample_weight(kind):
    labels, logits = rng_data(23)
    per = ref_loss(kind, np.eye(K)[labels], logits, True, 0.3, 1.0, math.e, math.e)
    sw = np.random.default_rng(0).uniform(0, 2, size=B)
    sw[:3] = 0.0
    cases = {
        None: per * sw,
        "none": per * sw,
        "sum": (per * sw).sum(),
        "sum_over_batch_size": (per * sw).sum() / B,
        "mean": (per * sw).sum() / B,
        "mean_with_sample_weight": (per * sw).sum() / sw.sum(),
    }
    for reduction, want in cases.items():
        loss = make_loss(kind, reg_weight=0.3, from_logits=True, reduction=reduction)
        got = keras.ops.convert_to_numpy(loss(labels, logits, sample_weight=sw.astype("float32")))
        assert rel_err(got, want) < RTOL, reduction
    # Zero weights remove examples exactly, even with garbage logits there.
    bad = logits.copy()
    bad[:3] = 1e4
    loss = make_loss(kind, reg_weight=0.3, from_logits=True, reduction="sum")
    a = keras.ops.convert_to_numpy(loss(labels, bad, sample_weight=sw.astype("float32")))
    assert rel_err(a, (per * sw).sum()) < RTOL


def test_mask_behaves_like_keras():
    from keras.src.backend import set_keras_mask

    labels, logits = rng_data(29)
    mask = np.arange(B) % 3 != 0
    loss = MinEntLoss(0.3, from_logits=True)
    y_pred = keras.ops.convert_to_tensor(logits)
    set_keras_mask(y_pred, keras.ops.convert_to_tensor(mask))
    per = ref_loss("min", np.eye(K)[labels], logits, True, 0.3, 1.0, math.e, math.e)
    got = float(keras.ops.convert_to_numpy(loss(labels, y_pred)))
    assert rel_err(got, per[mask].sum() / mask.sum()) < RTOL


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        ({"entropy_weight": -0.1}, "entropy_weight"),
        ({"ce_weight": -1}, "ce_weight"),
        ({"entropy_weight": float("nan")}, "entropy_weight"),
        ({"entropy_weight": "0.1"}, "entropy_weight"),
        ({"ce_log_base": 1.0}, "ce_log_base"),
        ({"ce_log_base": 0.0}, "ce_log_base"),
        ({"entropy_log_base": -2.0}, "entropy_log_base"),
        ({"label_smoothing": 1.5}, "label_smoothing"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"axis": 1.0}, "axis"),
        ({"from_logits": "yes"}, "from_logits"),
        ({"reduction": "avg"}, "reduction"),
        ({"entropy_weight": 0.0, "ce_weight": 0.0}, "ce_weight"),
    ],
)
def test_min_ent_rejects_bad_hyperparameters(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        MinEntLoss(**kwargs)


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        ({"epsilon": 0.0}, "epsilon"),
        ({"epsilon": -1e-6}, "epsilon"),
        ({"swapped_weight": -1.0}, "swapped_weight"),
        ({"swapped_log_base": 1}, "swapped_log_base"),
    ],
)
def test_mix_ent_rejects_bad_hyperparameters(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        MixEntLoss(**kwargs)


@pytest.mark.parametrize("kind", ["min", "mix"])
def test_bad_labels_are_reported(kind):
    loss = make_loss(kind, from_logits=True)
    labels, logits = rng_data(31)
    with pytest.raises(ValueError, match=r"outside \[0, 7\)"):
        loss(labels + 1, logits)  # 1-based labels reach K
    with pytest.raises(ValueError, match=r"outside \[0, 7\)"):
        loss(labels - 1, logits)
    with pytest.raises(ValueError, match="non-integer"):
        loss(labels + 0.5, logits)
    with pytest.raises(ValueError, match="at least 2 classes"):
        loss(np.zeros(B), logits[:, :1])
    with pytest.raises(ValueError, match="matches neither"):
        loss(np.eye(K + 1)[labels], logits)
    with pytest.raises(ValueError, match="class ids"):
        loss(labels[:5], logits)


# ---------------------------------------------------------------- serialization


@pytest.mark.parametrize("cls", [MinEntLoss, MixEntLoss])
def test_config_round_trip(cls):
    loss = cls.from_paper(
        from_logits=True,
        label_smoothing=0.1,
        axis=-1,
        reduction="sum",
        name="custom",
        dtype="float32",
    )
    config = loss.get_config()
    import inspect

    assert set(inspect.signature(cls.__init__).parameters) - {"self"} == set(config)
    clone = cls.from_config(config)
    assert clone == loss and clone.get_config() == config
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is cls and restored.get_config() == config
    assert keras.saving.get_registered_name(cls) == f"keras_minent>{cls.__name__}"


@pytest.mark.parametrize("cls", [MinEntLoss, MixEntLoss])
def test_saved_model_loads_in_fresh_process(cls, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.integers(0, 4, size=32)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    loss = cls(0.25, ce_log_base=2.0, from_logits=True, label_smoothing=0.05)
    model.compile("adam", loss)
    model.fit(x, y, epochs=1, verbose=0)
    expected = model.evaluate(x, y, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    out = run_python(
        "import numpy as np, keras, keras_minent\n"
        f"m = keras.saving.load_model(r'{path}')\n"
        f"x = np.load(r'{tmp_path / 'x.npy'}'); y = np.load(r'{tmp_path / 'y.npy'}')\n"
        "print(type(m.loss).__name__, m.loss.get_config()['ce_log_base'])\n"
        "print(repr(m.evaluate(x, y, verbose=0)))\n"
    )
    name_line, value_line = out.strip().splitlines()[-2:]
    assert name_line == f"{cls.__name__} 2.0"
    assert abs(float(value_line) - expected) <= 1e-6 * max(1.0, abs(expected))


# ---------------------------------------------------------------- training


def _entropy_after_training(loss, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(256, 10)).astype("float32")
    w = rng.normal(size=(10, 4))
    y = np.argmax(x @ w + rng.normal(0, 2.0, size=(256, 4)), axis=-1)  # noisy labels
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(4)]
    )
    model.compile(keras.optimizers.Adam(0.01), loss)
    hist = model.fit(x, y, batch_size=32, epochs=15, verbose=0, shuffle=False)
    logits = model.predict(x, verbose=0)
    h = keras.ops.convert_to_numpy(L.entropy(logits, from_logits=True)).mean()
    return hist.history["loss"], h


def test_training_decreases_loss_and_min_ent_lowers_entropy():
    ce_hist, h_ce = _entropy_after_training(MinEntLoss(0.0, from_logits=True))
    me_hist, h_me = _entropy_after_training(MinEntLoss(1.0, from_logits=True))
    mx_hist, _ = _entropy_after_training(MixEntLoss(0.1, from_logits=True))
    for hist in (ce_hist, me_hist, mx_hist):
        assert hist[-1] < 0.8 * hist[0]
    assert h_me < 0.8 * h_ce, (h_me, h_ce)


def test_import_without_tensorflow(tmp_path):
    """The losses and models work where TensorFlow is not installed (GPU machine)."""
    if BACKEND == "tensorflow":
        pytest.skip("the TensorFlow backend needs TensorFlow")
    site = pathlib.Path(keras.__file__).resolve().parents[1]
    farm = tmp_path / "site"  # site-packages without TensorFlow and tfds
    farm.mkdir()
    for entry in site.iterdir():
        if not entry.name.lower().startswith(("tensorflow", "tf_keras")):
            (farm / entry.name).symlink_to(entry)
    repo = pathlib.Path(keras_minent.__file__).resolve().parents[1]
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(repo)!r}, {str(farm)!r}]\n"
        "import importlib.util\n"
        "assert importlib.util.find_spec('tensorflow') is None\n"
        "import numpy as np, keras_minent\n"
        "m = keras_minent.vgg5(augment=True)\n"
        "loss = keras_minent.MinEntLoss(from_logits=True)\n"
        "print(float(loss(np.array([1, 2]), m(np.zeros((2, 28, 28, 1))))) > 0)\n"
        "print(keras_minent.__version__)\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": BACKEND},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ["True", keras_minent.__version__]
