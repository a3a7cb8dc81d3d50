"""The recipe's augmentation runs batched on the PyTorch backend.

Keras's torch image ops transform one image at a time (about 70 operations per
image); `keras_minent._augmentation._torch_projective` does the same map for the whole
batch. Both must give the same images.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_minent import _augmentation, models

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="the batched path exists on torch only"
)

LAYERS = [
    (models.JitRandomRotation, {"factor": 10 / 360, "fill_mode": "constant", "fill_value": 0.0}),
    (models.JitRandomRotation, {"factor": 0.3, "fill_mode": "constant", "fill_value": 7.0}),
    (models.JitRandomPerspective, {"factor": (0.5, 0.5), "scale": 0.5, "fill_value": 0.0}),
    (models.JitRandomPerspective, {"factor": (1.0, 1.0), "scale": 0.9, "fill_value": 3.0}),
]


@pytest.mark.parametrize("cls, kwargs", LAYERS)
def test_batched_transform_equals_keras_per_image(cls, kwargs):
    import torch

    images = torch.tensor(
        np.random.default_rng(0).integers(0, 256, (16, 28, 28, 1)).astype("float32")
    )
    layer = cls(seed=1, dtype="float32", **kwargs)
    t = layer.get_random_transformation(images, training=True, seed=layer.generator)
    batched = layer._transform_images(images, t, "bilinear")
    keras_own = super(cls, layer)._transform_images(images, t, "bilinear")
    np.testing.assert_allclose(batched.numpy(), keras_own.numpy(), rtol=0, atol=5e-3)
    assert float((batched - images).abs().max()) > 1.0  # it did transform


def test_augmentation_in_a_model_uses_few_operations(monkeypatch):
    from torch.profiler import profile

    aug = models.augmentation(seed=0)
    x = np.random.default_rng(0).integers(0, 256, (32, 28, 28, 1)).astype("float32")
    aug(x, training=True)  # build

    def count():
        with profile() as prof:
            aug(x, training=True)
        return sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))

    batched = count()
    monkeypatch.setattr(_augmentation, "BATCHED_TORCH_AUGMENTATION", False)
    per_image = count()
    assert batched * 10 < per_image, (batched, per_image)
