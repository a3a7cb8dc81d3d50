"""VGG-5 and Spinal-VGG-5 for 28x28 grey images (EMNIST-Letters), and any image size.

Both builders return uncompiled `keras.Model`s that take raw pixel values
(0..255, e.g. uint8 images) and output **float32 logits**, also under a
mixed-precision policy: compile them with `from_logits=True`.

Architecture and initialisation follow SpinalNet's EMNIST code, which the
paper used (PyTorch): 3x3 "same" convolutions with BatchNorm and ReLU, four
blocks with 2x2 max-pooling, He-normal (fan-out) kernels, PyTorch's BatchNorm
settings (`momentum=0.9`, `epsilon=1e-5` in Keras terms) and PyTorch's default
uniform initialisation of the dense layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import layers

from keras_minent._augmentation import (  # noqa: F401 - public here
    JitRandomPerspective,
    JitRandomRotation,
    augmentation,
)

#: Normalisation constants of the recipe (MNIST's), applied after scaling to [0, 1].
MEAN = 0.1307
STD = 0.3081

#: Outputs of the author's models (`train --head paper`, the paper's checkpoints):
#: torchvision's EMNIST label ids, letters are 1..26.
PAPER_OUTPUTS = 62
#: The outputs that are EMNIST-Letters' classes, as this package's labels 0..25.
LETTER_OUTPUTS = slice(1, 27)
#: Output channels of the 3x3 convolutions of the four blocks.
BLOCKS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256, 256, 256), (256, 256, 256))
_BN = {"momentum": 0.9, "epsilon": 1e-5}


def _check_args(input_shape, num_classes, dropout) -> None:
    if len(tuple(input_shape)) != 3 or min(d for d in input_shape if d) < 1:
        raise ValueError(
            f"`input_shape` must be (height, width, channels). Received: input_shape={input_shape}"
        )
    if input_shape[0] and input_shape[0] < 16 or input_shape[1] and input_shape[1] < 16:
        raise ValueError(
            "VGG-5 pools four times by 2: `input_shape` needs height and width "
            f">= 16. Received: input_shape={input_shape}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"`num_classes` must be an integer >= 2. Received: num_classes={num_classes!r}"
        )
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")


def _check_normalization(mean, std, channels) -> tuple:
    """`(mean, variance)` for the Normalization layer: scalars, or one value per channel."""

    def values(v, name):
        seq = isinstance(v, Sequence) and not isinstance(v, str)
        vals = list(v) if seq else [v]
        ok = all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
            for x in vals
        )
        if not ok or (seq and len(vals) not in (1, channels)):
            raise ValueError(
                f"`{name}` must be a finite number or one per channel ({channels}). "
                f"Received: {name}={v!r}"
            )
        return vals if seq else v

    mean, std = values(mean, "mean"), values(std, "std")
    if min(std if isinstance(std, list) else [std]) <= 0:
        raise ValueError(f"`std` must be > 0. Received: std={std!r}")
    variance = [x**2 for x in std] if isinstance(std, list) else std**2
    return mean, variance


def _torch_dense(units: int, fan_in: int, name: str, dtype=None) -> layers.Dense:
    """A Dense layer initialised like PyTorch's `nn.Linear` (U(+-1/sqrt(fan_in)))."""
    bound = 1.0 / math.sqrt(fan_in)
    return layers.Dense(
        units,
        kernel_initializer=keras.initializers.VarianceScaling(
            scale=1.0 / 3.0, mode="fan_in", distribution="uniform"
        ),
        bias_initializer=keras.initializers.RandomUniform(-bound, bound),
        name=name,
        dtype=dtype,
    )


@keras.saving.register_keras_serializable(package="keras_minent")
class FeatureSlice(layers.Layer):
    """Keeps features `start:stop` of the last axis (serializable, unlike `Lambda`).

    Args:
        start: First feature kept.
        stop: One past the last feature kept; None for the end.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).
    """

    def __init__(self, start: int, stop: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.start = int(start)
        self.stop = None if stop is None else int(stop)

    def call(self, inputs):
        return inputs[..., self.start : self.stop]

    def compute_output_shape(self, input_shape):
        size = input_shape[-1]
        if size is None:
            return (*input_shape[:-1], None)
        return (*input_shape[:-1], len(range(size)[self.start : self.stop]))

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


def _dropout_seed(seed: int | None, k: int) -> int | None:
    """The seed of the model's k-th Dropout layer. Seeded dropout keeps its random
    state in a variable (saved by `RunState`) on every backend; unseeded dropout
    on PyTorch draws from torch's global generator, which a resumed run cannot
    restore (its second epoch then differs from an uninterrupted run's)."""
    return None if seed is None else seed + 100 + k


def _stem(inputs, augment: bool, seed: int | None, normalization: tuple):
    x = inputs
    if augment:
        x = augmentation(seed=seed)(x)
    x = layers.Rescaling(1.0 / 255.0, dtype="float32", name="rescale")(x)
    mean, variance = normalization
    return layers.Normalization(mean=mean, variance=variance, dtype="float32", name="normalize")(x)


def _features(x, bn: dict):
    """The four convolutional blocks; returns the flattened 256 features."""
    for b, widths in enumerate(BLOCKS, start=1):
        for c, width in enumerate(widths, start=1):
            x = layers.Conv2D(
                width,
                3,
                padding="same",
                kernel_initializer=keras.initializers.VarianceScaling(
                    scale=2.0, mode="fan_out", distribution="untruncated_normal"
                ),
                name=f"block{b}_conv{c}",
            )(x)
            x = layers.BatchNormalization(**bn, name=f"block{b}_bn{c}")(x)
            x = layers.ReLU(name=f"block{b}_relu{c}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
    return layers.Flatten(name="flatten")(x)


def _output(logits, softmax: bool):
    if softmax:
        return layers.Softmax(dtype="float32", name="probabilities")(logits)
    return logits


def vgg5(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 26,
    dropout: float = 0.5,
    augment: bool = False,
    softmax: bool = False,
    seed: int | None = None,
    synchronized_bn: bool = False,
    name: str = "vgg5",
    mean: float | Sequence[float] = MEAN,
    std: float | Sequence[float] = STD,
) -> keras.Model:
    """VGG-5 of the paper (SpinalNet's EMNIST VGG).

    Four blocks of 3x3 convolutions (64, 64 | 128, 128 | 256 x3 | 256 x3),
    each followed by BatchNorm and ReLU, with 2x2 max-pooling after each
    block; then Dropout, Dense 512, BatchNorm, ReLU, Dropout, Dense
    `num_classes`. About 3.66 M weights for 26 classes.

    The model contains its preprocessing: it takes raw pixel values in
    [0, 255] (uint8 images work), scales them to [0, 1] and normalises with
    `mean` and `std` (default 0.1307 and 0.3081, MNIST's). Its output is float32 logits (use
    `from_logits=True`), also under a mixed-precision policy.

    Args:
        input_shape: `(height, width, channels)`, height and width >= 16.
        num_classes: Number of classes (>= 2). EMNIST-Letters has 26.
        dropout: Dropout rate of the head, in [0, 1). SpinalNet's script used 0.5.
        augment: Whether to put the recipe's training augmentation (see
            `augmentation`) at the input; it is active only in training.
        softmax: If True, output probabilities (float32) instead of logits.
        seed: Seed of the augmentation and dropout layers.
        synchronized_bn: Synchronize BatchNorm statistics across replicas
            (TensorFlow distribution strategies; see `keras_minent.distribute`).
        name: Name of the model.
        mean: Mean of the input in the [0, 1] scale: a number, or one per
            channel (the main job passes the training split's for data
            without published ones). Saved with the model.
        std: Standard deviation likewise (> 0).

    Returns:
        An uncompiled `keras.Model`.

    Raises:
        ValueError: If an argument is invalid.

    Example:
    ```python
    model = keras_minent.vgg5(augment=True)
    model.compile("adam", keras_minent.MinEntLoss(from_logits=True), metrics=["accuracy"])
    ```
    """
    _check_args(input_shape, num_classes, dropout)
    normalization = _check_normalization(mean, std, input_shape[-1])
    bn = {**_BN, "synchronized": synchronized_bn}
    inputs = keras.Input(tuple(input_shape), name="image")
    x = _features(_stem(inputs, augment, seed, normalization), bn)
    x = layers.Dropout(dropout, seed=_dropout_seed(seed, 1), name="head_dropout1")(x)
    x = _torch_dense(512, x.shape[-1], "head_dense")(x)
    x = layers.BatchNormalization(**bn, name="head_bn")(x)
    x = layers.ReLU(name="head_relu")(x)
    x = layers.Dropout(dropout, seed=_dropout_seed(seed, 2), name="head_dropout2")(x)
    logits = _torch_dense(num_classes, 512, "logits", dtype="float32")(x)
    return keras.Model(inputs, _output(logits, softmax), name=name)


def spinal_vgg5(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 26,
    dropout: float = 0.5,
    spinal_width: int = 128,
    augment: bool = False,
    softmax: bool = False,
    seed: int | None = None,
    synchronized_bn: bool = False,
    name: str = "spinal_vgg5",
    mean: float | Sequence[float] = MEAN,
    std: float | Sequence[float] = STD,
    _plain_slices: bool = False,
) -> keras.Model:
    """Spinal-VGG-5, the paper's competitor (SpinalNet's EMNIST code).

    The convolutional blocks and preprocessing of `vgg5`; the head splits the
    256 features into halves A and B and applies four spinal layers
    (Dropout, Dense `spinal_width`, BatchNorm, ReLU):
    `x1 = S1(A)`, `x2 = S2([B, x1])`, `x3 = S3([A, x2])`, `x4 = S4([B, x3])`;
    the output is Dropout and Dense `num_classes` on `[x1, x2, x3, x4]`.

    Args:
        input_shape: `(height, width, channels)`, height and width >= 16.
        num_classes: Number of classes (>= 2).
        dropout: Dropout rate of the head, in [0, 1).
        spinal_width: Units of each spinal layer.
        augment: Whether to include the training augmentation.
        softmax: If True, output probabilities instead of logits.
        seed: Seed of the augmentation and dropout layers.
        synchronized_bn: Synchronize BatchNorm statistics across replicas.
        name: Name of the model.
        mean: Mean of the input in the [0, 1] scale (see `vgg5`).
        std: Standard deviation of the input in the [0, 1] scale (see `vgg5`).

    Returns:
        An uncompiled `keras.Model` with float32 logits.

    Raises:
        ValueError: If an argument is invalid.

    Example:
    ```python
    model = keras_minent.spinal_vgg5()
    ```
    """
    _check_args(input_shape, num_classes, dropout)
    normalization = _check_normalization(mean, std, input_shape[-1])
    if isinstance(spinal_width, bool) or not isinstance(spinal_width, int) or spinal_width < 1:
        raise ValueError(f"`spinal_width` must be a positive integer. Received: {spinal_width}")
    bn = {**_BN, "synchronized": synchronized_bn}
    inputs = keras.Input(tuple(input_shape), name="image")
    features = _features(_stem(inputs, augment, seed, normalization), bn)
    half = features.shape[-1] // 2
    if _plain_slices:  # Keras's own GetItem operation: loads without this package
        part_a, part_b = features[:, :half], features[:, half:]
    else:
        part_a = FeatureSlice(0, half, name="half_a")(features)
        part_b = FeatureSlice(half, None, name="half_b")(features)

    def spinal(x, i):
        x = layers.Dropout(dropout, seed=_dropout_seed(seed, i), name=f"spinal{i}_dropout")(x)
        x = _torch_dense(spinal_width, x.shape[-1], f"spinal{i}_dense")(x)
        x = layers.BatchNormalization(**bn, name=f"spinal{i}_bn")(x)
        return layers.ReLU(name=f"spinal{i}_relu")(x)

    x1 = spinal(part_a, 1)
    x2 = spinal(layers.Concatenate(name="spinal2_in")([part_b, x1]), 2)
    x3 = spinal(layers.Concatenate(name="spinal3_in")([part_a, x2]), 3)
    x4 = spinal(layers.Concatenate(name="spinal4_in")([part_b, x3]), 4)
    x = layers.Concatenate(name="spinal_out")([x1, x2, x3, x4])
    x = layers.Dropout(dropout, seed=_dropout_seed(seed, 5), name="head_dropout")(x)
    logits = _torch_dense(num_classes, x.shape[-1], "logits", dtype="float32")(x)
    return keras.Model(inputs, _output(logits, softmax), name=name)


def inference_model(model: keras.Model, name: str | None = None) -> keras.Model:
    """The deployable copy of a trained `vgg5` / `spinal_vgg5` model.

    It has the trained weights (copied by layer name, BatchNorm statistics
    included), the preprocessing (rescaling and normalisation) and the same
    dtype policy, but no augmentation, and only Keras's own layers and
    operations (Spinal-VGG's halves are `x[:, :k]` slices, not `FeatureSlice`).
    So its `.keras` file loads with plain `keras` where keras_minent is not
    installed, and it predicts what `model` predicts in inference (dropout
    and augmentation are inactive there). The main job saves it as
    `inference.keras`; `model.export(...)` serves it (docs/guides/runs.md, "Deployment").

    Args:
        model: A model built by `vgg5` or `spinal_vgg5` (trained or loaded).
        name: Name of the returned model; defaults to `model.name`.

    Returns:
        An uncompiled `keras.Model`.

    Raises:
        ValueError: If `model` was not built by one of these builders.

    Example:
    ```python
    best = keras.saving.load_model("runs/emnist_letters/best.keras")
    keras_minent.models.inference_model(best).save("inference.keras")
    ```
    """
    layers_by_name = {layer.name: layer for layer in model.layers}
    if not {"block1_conv1", "logits"} <= set(layers_by_name):
        raise ValueError(
            "`inference_model` takes a model built by `vgg5` or `spinal_vgg5`. "
            f"Received a model with layers {sorted(layers_by_name)[:8]}..."
        )
    spinal = "spinal1_dense" in layers_by_name
    dropout = layers_by_name["head_dropout" if spinal else "head_dropout1"].rate
    norm = layers_by_name["normalize"].get_config()
    std = norm["variance"]
    std = [math.sqrt(v) for v in std] if isinstance(std, list) else math.sqrt(std)
    kwargs = {
        "input_shape": tuple(model.input_shape[1:]),
        "mean": norm["mean"],
        "std": std,
        "num_classes": layers_by_name["logits"].units,
        "dropout": dropout,
        "softmax": "probabilities" in layers_by_name,
        "name": name or model.name,
    }
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(layers_by_name["block1_conv1"].dtype_policy.name)
    try:
        if spinal:
            units = layers_by_name["spinal1_dense"].units
            copy = spinal_vgg5(spinal_width=units, _plain_slices=True, **kwargs)
        else:
            copy = vgg5(**kwargs)
    finally:
        keras.config.set_dtype_policy(previous)
    for layer in copy.layers:
        if layer.weights:
            layer.set_weights(layers_by_name[layer.name].get_weights())
    return copy


#: The builders by name, as the training and tuning commands take them.
BUILDERS = {"vgg5": vgg5, "spinal_vgg5": spinal_vgg5}

#: Names of `keras_minent.paper_checkpoint` that are part of this module's API
#: (imported when first used: reading a checkpoint needs PyTorch and the data errors).
_PAPER_NAMES = ("from_paper_checkpoint", "read_paper_checkpoint", "PaperCheckpointError")


def __getattr__(name: str):
    if name in _PAPER_NAMES:
        from keras_minent import paper_checkpoint

        return getattr(paper_checkpoint, name)
    raise AttributeError(f"module 'keras_minent.models' has no attribute {name!r}")
