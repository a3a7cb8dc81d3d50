"""The recipe's training augmentation (random rotation and perspective), every backend.

Public through `keras_minent.models.augmentation`. The two layers are Keras's own
preprocessing layers, registered subclasses that stay jit-compatible after loading
and, on the PyTorch backend, transform a whole batch at once (`_torch_projective`)
instead of Keras's image-by-image torch ops.
"""

from __future__ import annotations

import keras
from keras import layers


def augmentation(
    rotation_degrees: float = 10.0,
    perspective_distortion: float = 0.5,
    perspective_probability: float = 0.5,
    seed: int | None = None,
    name: str = "augmentation",
) -> keras.Sequential:
    """The recipe's training augmentation, as Keras preprocessing layers.

    Random rotation within +-`rotation_degrees` and a random perspective
    transform (corners shifted by up to `perspective_distortion`, applied
    with probability `perspective_probability`), both filling with 0 (the
    background), like torchvision's `RandomRotation(10)` and
    `RandomPerspective(0.5, p=0.5)`. Active only when `training=True`;
    computed in float32.

    Args:
        rotation_degrees: Largest rotation angle, in degrees (>= 0).
        perspective_distortion: Corner shift as a fraction of the image, in [0, 1].
        perspective_probability: Probability of the perspective transform, in [0, 1].
        seed: Seed of the random transforms.
        name: Name of the returned model.

    Returns:
        A `keras.Sequential` mapping images to augmented images.

    Raises:
        ValueError: If an argument is outside its range.

    Example:
    ```python
    aug = keras_minent.models.augmentation(seed=0)
    augmented = aug(images, training=True)
    ```
    """
    if rotation_degrees < 0 or not 0 <= perspective_distortion <= 1:
        raise ValueError(
            "`rotation_degrees` must be >= 0 and `perspective_distortion` in [0, 1]. "
            f"Received: {rotation_degrees}, {perspective_distortion}"
        )
    if not 0 <= perspective_probability <= 1:
        raise ValueError(
            f"`perspective_probability` must be in [0, 1]. Received: {perspective_probability}"
        )
    aug = [
        JitRandomRotation(
            rotation_degrees / 360.0,
            fill_mode="constant",
            fill_value=0.0,
            seed=seed,
            dtype="float32",
            name="random_rotation",
        ),
        JitRandomPerspective(
            factor=(perspective_probability, perspective_probability),
            scale=perspective_distortion,
            fill_value=0.0,
            seed=None if seed is None else seed + 1,
            dtype="float32",
            name="random_perspective",
        ),
    ]
    return keras.Sequential(aug, name=name)


def _jit_on_array_backends(layer: layers.Layer) -> None:
    # Keras marks its random image layers as not XLA-compatible because of
    # TensorFlow's image ops; on JAX (and torch) they are plain array code, and
    # keeping them jit-compatible keeps the whole training step compiled.
    if keras.backend.backend() in ("jax", "torch"):
        layer.supports_jit = True


#: Whether the augmentation runs batched on the PyTorch backend (`_torch_projective`);
#: False restores Keras's image-by-image ops (benchmarks/torch_backend.py compares them).
BATCHED_TORCH_AUGMENTATION = True


def _batched_on_torch(layer: layers.Layer, images, interpolation: str) -> bool:
    """Whether `_torch_projective` replaces Keras's torch image op for this call."""
    return (
        BATCHED_TORCH_AUGMENTATION
        and getattr(layer.backend, "_backend", None) == "torch"
        and keras.backend.backend() == "torch"
        and layer.data_format == "channels_last"
        and interpolation == "bilinear"
        and len(images.shape) == 4
    )


def _torch_projective(images, transform, fill_value: float):
    """Keras's projective image transform (bilinear, constant fill), batched on torch.

    Keras's torch `affine_transform` and `perspective_transform` loop over the
    images of a batch in Python (about 70 small operations per image: 7,000
    kernel launches per step at batch 100, which held the PyTorch backend to
    289 images/s on an H200). This is the same map in a few batched
    operations: output pixel `(x, y)` reads the input at
    `((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k)`, `k = c0 x + c1 y + 1`,
    for `transform = [a0, a1, a2, b0, b1, b2, c0, c1]` per image, bilinear
    between pixel centres; input pixels outside the image read `fill_value`.

    Args:
        images: `(B, H, W, C)` float tensor.
        transform: `(B, 8)` (or `(8,)`) transforms, Keras's convention.
        fill_value: Value of the pixels outside the input image.
    """
    import torch

    b, h, w, _ = images.shape
    t = torch.as_tensor(transform, device=images.device).to(images.dtype).reshape(-1, 8)
    t = t.expand(b, 8)
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=images.dtype, device=images.device),
        torch.arange(w, dtype=images.dtype, device=images.device),
        indexing="ij",
    )
    a = [t[:, i, None, None] for i in range(8)]
    k = a[6] * xs + a[7] * ys + 1.0
    x_in = (a[0] * xs + a[1] * ys + a[2]) / k
    y_in = (a[3] * xs + a[4] * ys + a[5]) / k
    # grid_sample with align_corners=True: -1 and 1 are the centres of the edge pixels.
    grid = torch.stack([2.0 * x_in / max(w - 1, 1) - 1.0, 2.0 * y_in / max(h - 1, 1) - 1.0], -1)
    sample = torch.nn.functional.grid_sample(
        images.permute(0, 3, 1, 2), grid, "bilinear", "zeros", align_corners=True
    )
    if fill_value:  # zero padding, plus the fill times the weight that fell outside
        inside = torch.nn.functional.grid_sample(
            torch.ones_like(images[:, None, :, :, 0]), grid, "bilinear", "zeros", True
        )
        sample = sample + fill_value * (1.0 - inside)
    return sample.permute(0, 2, 3, 1)


@keras.saving.register_keras_serializable(package="keras_minent")
class JitRandomRotation(layers.RandomRotation):
    """`keras.layers.RandomRotation`, jit-compatible on JAX and torch, batched on torch.

    A subclass rather than an attribute set after construction, so that a
    model loaded from a `.keras` file (a resumed run) still compiles its
    training step with XLA on JAX. On the PyTorch backend the rotation runs
    batched (`_torch_projective`) instead of image by image.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _jit_on_array_backends(self)

    def _transform_images(self, images, transformation, interpolation):
        if self.fill_mode == "constant" and _batched_on_torch(self, images, interpolation):
            return _torch_projective(images, transformation["rotation_matrix"], self.fill_value)
        return super()._transform_images(images, transformation, interpolation)


@keras.saving.register_keras_serializable(package="keras_minent")
class JitRandomPerspective(layers.RandomPerspective):
    """`keras.layers.RandomPerspective`, jit-compatible on JAX and torch (see
    `JitRandomRotation`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _jit_on_array_backends(self)

    def _transform_images(self, images, transformation, interpolation):
        if transformation is None or not _batched_on_torch(self, images, interpolation):
            return super()._transform_images(images, transformation, interpolation)
        from keras.src.backend.torch.image import compute_homography_matrix

        transform = compute_homography_matrix(
            transformation["start_points"], transformation["end_points"]
        )
        outputs = _torch_projective(images, transform, self.fill_value)
        apply = transformation["apply_perspective"]
        return keras.ops.where(apply[:, None, None, None], outputs, images)
