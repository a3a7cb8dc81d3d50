"""VGG-5 and Spinal-VGG-5: structure, parameter counts, precision, save/load."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_minent
from keras_minent import models
from keras_minent.testing import BACKEND

pytestmark = pytest.mark.backend_matrix


def reference_vgg5_params(k=26):
    """Trainable parameters of docs/method.md, section 2 (PyTorch counts no BN statistics)."""
    convs = [(1, 64), (64, 64), (64, 128), (128, 128), (128, 256)] + [(256, 256)] * 5
    conv = sum(9 * i * o + o for i, o in convs)
    bn = sum(2 * o for _, o in convs) + 2 * 512
    return conv + bn + (256 * 512 + 512) + (512 * k + k)


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_vgg5_structure_and_count():
    model = keras_minent.vgg5()
    assert trainable(model) == reference_vgg5_params() == 3_654_362
    assert abs(model.count_params() / 3.66e6 - 1) < 0.01
    convs = [la for la in model.layers if isinstance(la, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [64, 64, 128, 128, 256, 256, 256, 256, 256, 256]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    pools = [la for la in model.layers if isinstance(la, keras.layers.MaxPooling2D)]
    assert [tuple(p.output.shape[1:]) for p in pools] == [
        (14, 14, 64),
        (7, 7, 128),
        (3, 3, 256),
        (1, 1, 256),
    ]
    bns = [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert len(bns) == 11 and all(b.momentum == 0.9 and b.epsilon == 1e-5 for b in bns)
    assert model.output.shape == (None, 26)
    assert trainable(keras_minent.vgg5(num_classes=10)) == reference_vgg5_params(10)


def test_vgg5_initialisation():
    keras.utils.set_random_seed(0)
    model = keras_minent.vgg5()
    kernel = keras.ops.convert_to_numpy(model.get_layer("block3_conv2").kernel)
    assert abs(kernel.std() / np.sqrt(2 / (9 * 256)) - 1) < 0.02
    head = keras.ops.convert_to_numpy(model.get_layer("head_dense").kernel)
    assert np.abs(head).max() <= 1 / np.sqrt(256) + 1e-7
    assert abs(head.std() / (1 / np.sqrt(256) / np.sqrt(3)) - 1) < 0.02
    bn = model.get_layer("block1_bn1")
    assert np.all(keras.ops.convert_to_numpy(bn.gamma) == 1)


def test_spinal_vgg5_structure():
    model = keras_minent.spinal_vgg5()
    dense = {la.name: la for la in model.layers if isinstance(la, keras.layers.Dense)}
    fan_in = {n: int(d.kernel.shape[0]) for n, d in dense.items()}
    assert fan_in == {
        "spinal1_dense": 128,
        "spinal2_dense": 256,
        "spinal3_dense": 256,
        "spinal4_dense": 256,
        "logits": 512,
    }
    conv = reference_vgg5_params() - (256 * 512 + 512 + 2 * 512 + 512 * 26 + 26)
    head = (128 * 128 + 3 * 256 * 128 + 4 * 128) + 4 * 2 * 128 + (512 * 26 + 26)
    assert trainable(model) == conv + head


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("builder", [keras_minent.vgg5, keras_minent.spinal_vgg5])
def test_float32_logits_under_mixed_precision(policy, builder):
    keras.config.set_dtype_policy(policy)
    model = builder(augment=True)
    assert model.get_layer("block1_conv1").compute_dtype == policy.split("_")[1]
    out = model(np.zeros((2, 28, 28, 1), "uint8"))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


def test_preprocessing_normalises_raw_pixels():
    model = keras_minent.vgg5()
    sub = keras.Model(model.input, model.get_layer("normalize").output)
    out = keras.ops.convert_to_numpy(sub(np.full((1, 28, 28, 1), 255, "uint8")))
    np.testing.assert_allclose(out, (1 - 0.1307) / 0.3081, rtol=1e-5)


def test_augmentation_only_in_training():
    aug = models.augmentation(seed=1)
    x = np.zeros((8, 28, 28, 1), "float32")
    x[:, 4:24, 12:16] = 255.0
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(aug(x, training=False)), x)
    out = keras.ops.convert_to_numpy(aug(x, training=True))
    assert out.shape == x.shape and not np.allclose(out, x)
    with pytest.raises(ValueError, match="perspective_probability"):
        models.augmentation(perspective_probability=2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 1}, "num_classes"),
        ({"dropout": 1.0}, "dropout"),
        ({"input_shape": (8, 8, 1)}, "16"),
        ({"input_shape": (28, 28)}, "input_shape"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        keras_minent.vgg5(**kwargs)


@pytest.mark.parametrize("builder", [keras_minent.vgg5, keras_minent.spinal_vgg5])
def test_save_and_load_identical_predictions(builder, tmp_path):
    model = builder(augment=True, seed=0)
    model.compile("adam", keras_minent.MixEntLoss(from_logits=True))
    x = np.random.default_rng(0).integers(0, 256, size=(4, 28, 28, 1)).astype("uint8")
    model.fit(x, np.arange(4), epochs=1, verbose=0)
    before = keras.ops.convert_to_numpy(model.predict(x, verbose=0))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    after = keras.ops.convert_to_numpy(loaded.predict(x, verbose=0))
    # Same weights; a fresh XLA compilation may round differently (1 ulp).
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-6)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    assert isinstance(loaded.loss, keras_minent.MixEntLoss)
    # The augmentation stays jit-compatible after loading (a resumed run on JAX
    # keeps its compiled step); "auto" means no XLA on TensorFlow (these layers) and torch.
    assert loaded.jit_compile == model.jit_compile == (BACKEND == "jax")


def test_normalization_per_channel_is_validated_saved_and_copied():
    model = models.vgg5((32, 32, 3), 10, mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.3])
    norm = model.get_layer("normalize").get_config()
    assert norm["mean"] == [0.5, 0.4, 0.3]
    np.testing.assert_allclose(norm["variance"], [0.04, 0.0625, 0.09])
    copy = models.inference_model(model)
    assert copy.get_layer("normalize").get_config()["variance"] == norm["variance"]
    default = models.inference_model(models.vgg5()).get_layer("normalize").get_config()
    assert (default["mean"], default["variance"]) == (models.MEAN, models.STD**2)
    for kwargs, message in (
        ({"std": 0.0}, "`std` must be > 0"),
        ({"std": [0.2, 0.3]}, "one per channel"),
        ({"mean": float("nan")}, "finite number"),
    ):
        with pytest.raises(ValueError, match=message):
            models.spinal_vgg5((32, 32, 3), 10, **kwargs)
