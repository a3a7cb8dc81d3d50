"""MinEntLoss / MixEntLoss as Keras losses: reductions, masks, argument checks,
serialization and training (their values: `test_losses.py`)."""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_minent
from keras_minent import MinEntLoss, MixEntLoss
from keras_minent import losses as L
from keras_minent.testing import (
    BACKEND,
    REF_BATCH,
    REF_CLASSES,
    rel_err,
    run_python,
)
from keras_minent.testing import reference_data as rng_data
from keras_minent.testing import reference_loss as ref_loss

pytestmark = pytest.mark.backend_matrix

K = REF_CLASSES
B = REF_BATCH
KINDS = ["min_ent", "mix_ent"]
RTOL = 1e-5


# ---------------------------------------------------------------- Keras-native


@pytest.mark.parametrize("kind", KINDS)
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
        loss = L.get(kind, 0.3, from_logits=True, reduction=reduction)
        got = keras.ops.convert_to_numpy(loss(labels, logits, sample_weight=sw.astype("float32")))
        assert rel_err(got, want) < RTOL, reduction
    # Zero weights remove examples exactly, even with garbage logits there.
    bad = logits.copy()
    bad[:3] = 1e4
    loss = L.get(kind, 0.3, from_logits=True, reduction="sum")
    a = keras.ops.convert_to_numpy(loss(labels, bad, sample_weight=sw.astype("float32")))
    assert rel_err(a, (per * sw).sum()) < RTOL


def test_mask_behaves_like_keras():
    from keras.src.backend import set_keras_mask

    labels, logits = rng_data(29)
    mask = np.arange(B) % 3 != 0
    loss = MinEntLoss(0.3, from_logits=True)
    y_pred = keras.ops.convert_to_tensor(logits)
    set_keras_mask(y_pred, keras.ops.convert_to_tensor(mask))
    per = ref_loss("min_ent", np.eye(K)[labels], logits, True, 0.3, 1.0, math.e, math.e)
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
        ({"ce_log_base": 0.5}, "ce_log_base"),
        ({"entropy_log_base": 0.9}, "entropy_log_base"),
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
        ({"swapped_log_base": 0.5}, "swapped_log_base"),
    ],
)
def test_mix_ent_rejects_bad_hyperparameters(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        MixEntLoss(**kwargs)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_labels_are_reported(kind):
    loss = L.get(kind, from_logits=True)
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


def compiled(fn):
    """`fn` compiled as a training step is: jax.jit, tf.function(jit_compile=True), torch.compile.

    There the labels are not concrete, so they cannot be checked eagerly.
    """
    if BACKEND == "jax":
        import jax

        step = jax.jit(fn)
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        step = tf.function(fn, jit_compile=True)
    else:
        import torch

        step = torch.compile(fn, backend="eager", fullgraph=True)
    return lambda *args: step(*(keras.ops.convert_to_tensor(a) for a in args))


@pytest.mark.parametrize("kind", KINDS)
def test_invalid_class_ids_give_nan_in_compiled_code(kind):
    _, logits = rng_data(37)
    logits = logits[:6]
    loss = L.get(kind, 0.3, from_logits=True, reduction=None)
    good = keras.ops.convert_to_numpy(loss(np.array([0, 1, 2, 3, 4, 5]), logits))
    labels = np.array([0, K, -1, 3, K + 5, 5], "int32")  # 1, 2 and 4 are outside [0, K)
    got = keras.ops.convert_to_numpy(compiled(lambda y, z: loss(y, z))(labels, logits))
    assert np.all(np.isnan(got[[1, 2, 4]]))
    assert rel_err(got[[0, 3, 5]], good[[0, 3, 5]]) < 1e-6
    # Integer-valued float labels work; a non-integer one gives NaN too.
    float_labels = np.array([0.0, 1.0, 2.5, 3.0, 4.0, 5.0], "float32")
    got = keras.ops.convert_to_numpy(compiled(lambda y, z: loss(y, z))(float_labels, logits))
    assert np.isnan(got[2]) and rel_err(np.delete(got, 2), np.delete(good, 2)) < 1e-6
    # Reduced (as in fit): the batch loss is NaN, not a finite value without the term.
    mean = L.get(kind, 0.3, from_logits=True)
    value = keras.ops.convert_to_numpy(compiled(lambda y, z: mean(y, z))(labels, logits))
    assert np.isnan(value)
    # The function form, and one-hot targets are left alone.
    fn = L.min_ent if kind == "min_ent" else L.mix_ent
    per = compiled(lambda y, z: fn(y, z, from_logits=True))(labels, logits)
    assert np.isnan(keras.ops.convert_to_numpy(per)[1])
    onehot = np.eye(K, dtype="float32")[[0, 1, 2, 3, 4, 5]]
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(compiled(loss)(onehot, logits))))


@pytest.mark.parametrize("base", [0.5, 0.999, 1.0, 0.0])
def test_log_base_must_exceed_one(base):
    """A base in (0, 1) has ln(base) < 0: the term's sign would flip (loss -63.7 in a run)."""
    for make in (
        lambda: MinEntLoss(ce_log_base=base),
        lambda: MinEntLoss(entropy_log_base=base),
        lambda: MixEntLoss(swapped_log_base=base),
        lambda: L.get("min_ent", reg_log_base=base),
        lambda: L.min_ent(np.array([0]), np.zeros((1, 2), "float32"), ce_log_base=base),
        lambda: L.mix_ent(np.array([0]), np.zeros((1, 2), "float32"), swapped_log_base=base),
    ):
        with pytest.raises(ValueError, match=r"must be > 1 .*flips the sign"):
            make()
    assert MinEntLoss(ce_log_base=1.0001).ce_log_base == 1.0001


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
    assert hash(clone) == hash(loss) and len({clone, loss}) == 1  # consistent with ==
    assert clone != cls.from_paper(from_logits=False)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is cls and restored.get_config() == config
    assert keras.saving.get_registered_name(cls) == f"keras_minent>{cls.__name__}"


SAVED_KINDS = ["MinEntLoss", "MixEntLoss", "min_ent", "mix_ent"]


@pytest.fixture(scope="module")
def loaded_in_a_fresh_process(tmp_path_factory) -> dict:
    """Each of `SAVED_KINDS`, compiled into a small model, fitted and saved to .keras, then
    loaded and evaluated in ONE fresh process where only keras and keras_minent are
    imported. Returns, per kind, the evaluation before saving and the loaded model's
    description and evaluation."""
    tmp = tmp_path_factory.mktemp("saved_losses")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.integers(0, 4, size=32)
    np.save(tmp / "x.npy", x)
    np.save(tmp / "y.npy", y)
    expected = {}
    for kind in SAVED_KINDS:
        if kind[0].isupper():  # a loss object, on logits
            model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
            loss = getattr(L, kind)(0.25, ce_log_base=2.0, from_logits=True, label_smoothing=0.05)
        else:  # a function, called with its defaults: on probabilities
            model = keras.Sequential(
                [keras.Input((6,)), keras.layers.Dense(4, activation="softmax")]
            )
            loss = getattr(L, kind)
        model.compile("adam", loss)
        model.fit(x, y, epochs=1, verbose=0)
        expected[kind] = model.evaluate(x, y, verbose=0)
        model.save(tmp / f"{kind}.keras")
    out = run_python(
        "import json, numpy as np, keras, keras_minent\n"
        f"x = np.load(r'{tmp / 'x.npy'}'); y = np.load(r'{tmp / 'y.npy'}')\n"
        f"for kind in {SAVED_KINDS!r}:\n"
        f"    m = keras.saving.load_model(rf'{tmp}/{{kind}}.keras')\n"
        "    if kind[0].isupper():\n"
        "        name = f\"{type(m.loss).__name__} {m.loss.get_config()['ce_log_base']}\"\n"
        "    else:\n"
        "        name = f'{m.loss.__name__} {keras.saving.get_registered_name(m.loss)}'\n"
        "    print('LOADED', json.dumps([kind, name, m.evaluate(x, y, verbose=0)]))\n"
    )
    loaded = {}
    for line in out.splitlines():
        if line.startswith("LOADED "):
            kind, name, value = json.loads(line[len("LOADED ") :])
            loaded[kind] = (name, value)
    return {kind: (expected[kind], *loaded[kind]) for kind in loaded}


@pytest.mark.parametrize("kind", SAVED_KINDS)
def test_saved_model_loads_in_fresh_process(kind, loaded_in_a_fresh_process):
    """Class and function losses: saved to .keras, loaded where only keras and keras_minent
    are imported (the functions are registered as keras_minent>min_ent, ...)."""
    assert kind in loaded_in_a_fresh_process, sorted(loaded_in_a_fresh_process)
    expected, name, value = loaded_in_a_fresh_process[kind]
    want_name = f"{kind} 2.0" if kind[0].isupper() else f"{kind} keras_minent>{kind}"
    assert name == want_name
    assert abs(value - expected) <= 1e-6 * max(1.0, abs(expected))


def test_function_losses_are_registered():
    for name in ("min_ent", "mix_ent", "entropy", "swapped_cross_entropy"):
        fn = getattr(L, name)
        assert keras.saving.get_registered_name(fn) == f"keras_minent>{name}"
        assert keras.saving.get_registered_object(f"keras_minent>{name}") is fn
        assert keras.losses.deserialize(keras.losses.serialize(fn)) is fn


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
