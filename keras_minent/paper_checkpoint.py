"""The paper's published PyTorch checkpoints as this package's Keras models.

The author's repository publishes VGG-5 models trained with MIN-ENT, MIX-ENT and
cross entropy (`vgg/models_directory/*.pt`). Each file is a dict whose
`"model_state"` is the `state_dict` of a PyTorch `VGG` (or `SpinalVGG`) module:
blocks `l1`..`l4` (`nn.Sequential` of Conv2d, BatchNorm2d, ReLU, ..., MaxPool2d,
as `keras_minent.vgg5`), a head `classifier` (Dropout, Linear(256, 512),
BatchNorm1d, ReLU, Dropout, Linear(512, 62)) or Spinal-VGG's `fc_spinal_layer1..4`
and `fc_out`, and the loss's trainable weights `loss_module.loss_1_weight` /
`loss_2_weight`. The author's training code also lists the same modules again
under `params.base.<k>` / `params.loss_weights.0` (an `nn.ModuleDict` for two
learning rates); those entries are accepted when they equal the modules' own.

Two facts of the author's setup shape the conversion:

* The models have **62 outputs** and were trained on torchvision's EMNIST-Letters
  labels 1..26; this package's labels are 0..25, so outputs 1..26 are kept.
* torchvision returns EMNIST's images **transposed** (as stored in NIST's files) and
  the author's code does not transpose them back, so the models saw every letter
  mirrored across the diagonal, where this package's loaders give it upright.
  Transposing every 3x3 kernel makes the Keras model take the upright image and
  give the author's logits for the transposed one: 3x3 "same" convolutions, BatchNorm
  and ReLU commute with transposition once their kernels are transposed, and the
  four 2x2 poolings (28 -> 14 -> 7 -> 3 -> 1) drop the same last row as column.

Reading never executes pickled code: `torch.load(..., weights_only=True)` loads
tensors, dicts, lists and numbers only; a file that needs more is refused.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

import keras
import numpy as np

from keras_minent import models
from keras_minent._plotting import require
from keras_minent.errors import PaperCheckpointError
from keras_minent.models import LETTER_OUTPUTS, PAPER_OUTPUTS

_VGG_HEAD = {"classifier.1": "head_dense", "classifier.2": "head_bn", "classifier.5": "logits"}
_SPINAL_HEAD = {
    **{f"fc_spinal_layer{i}.1": f"spinal{i}_dense" for i in range(1, 5)},
    **{f"fc_spinal_layer{i}.2": f"spinal{i}_bn" for i in range(1, 5)},
    "fc_out.1": "logits",
}
#: The modules listed again under `params.base.<k>` in the author's code, by k.
_BASE_MODULES = {
    "vgg5": ("l1", "l2", "l3", "l4", "classifier"),
    "spinal_vgg5": (
        "l1",
        "l2",
        "l3",
        "l4",
        *(f"fc_spinal_layer{i}" for i in range(1, 5)),
        "fc_out",
    ),
}
_LOSS_WEIGHTS = ("loss_1_weight", "loss_2_weight")
_BN_STATS = ("weight", "bias", "running_mean", "running_var")


@dataclasses.dataclass
class PaperCheckpoint:
    """What a paper checkpoint holds (`read_paper_checkpoint`).

    Attributes:
        path: The file.
        architecture: `"vgg5"` or `"spinal_vgg5"` (this package's builder).
        tensors: The model's parameters and BatchNorm statistics by PyTorch name
            (float32 arrays; duplicate `params.*` entries and `num_batches_tracked`
            left out).
        loss_weights: `loss_1_weight` / `loss_2_weight` where the file has them.
        extra: The file's other top-level entries that are plain numbers or
            strings (an epoch count, an accuracy), and the names of the rest.
    """

    path: str
    architecture: str
    tensors: dict[str, np.ndarray]
    loss_weights: dict[str, float]
    extra: dict[str, Any]


def _refuse(path: str, what: str) -> PaperCheckpointError:
    return PaperCheckpointError(f"{path}: {what}")


def _load(path: str) -> Any:
    """`torch.load` of `path` with `weights_only=True`, errors as one line."""
    torch = require("torch", "torch", "Reading a PyTorch checkpoint")
    import pickle

    if not os.path.isfile(path):
        raise _refuse(path, "no such file.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        needs = re.search(r"GLOBAL ([\w.]+)", str(e))
        raise _refuse(
            path,
            "holds pickled Python objects beyond tensors"
            + (f" ({needs.group(1)})" if needs else "")
            + ", which a safe load (torch.load weights_only=True) refuses; keras-minent "
            "never executes a checkpoint's code.",
        ) from None
    except Exception as e:  # truncated, not a torch file, ...
        text = " ".join(str(e).split())[:160]
        raise _refuse(
            path, f"not a readable PyTorch checkpoint, truncated or corrupt ({text})."
        ) from e


def _state_dict(path: str, loaded: Any) -> tuple[dict, dict]:
    """`(state_dict, extra)` of a loaded file: its `"model_state"` (or the file itself
    when it is a bare state_dict)."""
    torch = require("torch", "torch", "Reading a PyTorch checkpoint")
    if not isinstance(loaded, dict):
        raise _refuse(path, f"holds a {type(loaded).__name__}, not a dict with 'model_state'.")
    if "model_state" in loaded:
        state, rest = (
            loaded["model_state"],
            {k: v for k, v in loaded.items() if k != "model_state"},
        )
    elif loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        state, rest = loaded, {}
    else:
        raise _refuse(path, f"has no 'model_state' (its entries: {sorted(map(str, loaded))[:8]}).")
    if not isinstance(state, dict):
        raise _refuse(path, "'model_state' is not a state_dict (a dict of tensors).")
    extra: dict[str, Any] = {}
    for key, value in rest.items():
        if isinstance(value, bool | int | float | str):
            extra[str(key)] = value
        else:
            extra.setdefault("other_entries", []).append(str(key))
    return state, extra


def _architecture(path: str, keys: list[str]) -> str:
    vgg = any(k.startswith("classifier.") for k in keys)
    spinal = any(k.startswith(("fc_spinal_layer", "fc_out.")) for k in keys)
    if vgg != spinal:
        return "vgg5" if vgg else "spinal_vgg5"
    which = "both" if vgg else "neither"
    raise _refuse(
        path,
        f"holds {which} VGG-5's head (classifier.*) {'and' if vgg else 'nor'} Spinal-VGG-5's "
        f"(fc_spinal_layer1..4, fc_out): not one of the paper's models "
        f"(first keys: {', '.join(keys[:4])}).",
    )


def _canonical(key: str, architecture: str) -> str | None:
    """The module's own name of a `params.*` duplicate; None if `key` is not one."""
    m = re.fullmatch(r"params\.base\.(\d+)\.(.+)", key)
    if m:
        base = _BASE_MODULES[architecture]
        k = int(m.group(1))
        return f"{base[k]}.{m.group(2)}" if k < len(base) else None  # None: unexpected
    m = re.fullmatch(r"params\.loss_weights\.0\.(.+)", key)
    return f"loss_module.{m.group(1)}" if m else None


def read_paper_checkpoint(path: str | os.PathLike) -> PaperCheckpoint:
    """Reads one of the paper's checkpoints, safely (no pickled code runs).

    Args:
        path: The `.pt` file.

    Returns:
        A `PaperCheckpoint`: the architecture, the tensors as float32 arrays,
        the loss weights and the file's other entries.

    Raises:
        PaperCheckpointError: If the file is missing, unreadable, needs arbitrary
            unpickling, or is not a VGG-5 / Spinal-VGG-5 state_dict.
        MissingExtraError: If PyTorch is not installed.

    Example:
    ```python
    ckpt = read_paper_checkpoint("95.933_min_ent_vgg_emnist_letters.pt")
    print(ckpt.architecture, ckpt.loss_weights)
    ```
    """
    path = os.fspath(path)
    state, extra = _state_dict(path, _load(path))
    keys = [str(k) for k in state]
    architecture = _architecture(path, keys)
    tensors: dict[str, np.ndarray] = {}
    duplicates = {}
    for key, value in state.items():
        if not hasattr(value, "detach"):
            raise _refuse(path, f"entry {key} of 'model_state' is not a tensor.")
        array = value.detach().cpu()
        array = (array.float() if array.is_floating_point() else array).numpy()
        canonical = _canonical(key, architecture)
        if canonical is not None:
            duplicates[key] = (canonical, array)
        elif not key.endswith("num_batches_tracked"):
            tensors[key] = array
    for key, (canonical, array) in duplicates.items():
        if canonical.endswith("num_batches_tracked"):
            continue
        same = canonical in tensors and np.array_equal(tensors[canonical], array)
        if not same:
            raise _refuse(path, f"unexpected key {key} (it does not repeat {canonical}).")
    loss_weights = {}
    for name in _LOSS_WEIGHTS:
        value = tensors.pop(f"loss_module.{name}", None)
        if value is not None:
            if value.size != 1:
                raise _refuse(path, f"loss_module.{name} has shape {value.shape}, expected (1,).")
            loss_weights[name] = float(value.reshape(()))
    return PaperCheckpoint(path, architecture, tensors, loss_weights, extra)


def _mapping(architecture: str) -> dict[str, str]:
    """Keras layer name by PyTorch module name."""
    mapping = {}
    for b, widths in enumerate(models.BLOCKS, start=1):
        for c in range(len(widths)):
            mapping[f"l{b}.{3 * c}"] = f"block{b}_conv{c + 1}"
            mapping[f"l{b}.{3 * c + 1}"] = f"block{b}_bn{c + 1}"
    return {**mapping, **(_VGG_HEAD if architecture == "vgg5" else _SPINAL_HEAD)}


def _keras_weights(layer: keras.layers.Layer, module: str, tensors: dict) -> list[np.ndarray]:
    """The Keras weights of `layer` from the PyTorch tensors of `module` (popped)."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return [tensors.pop(f"{module}.{name}") for name in _BN_STATS]
    kernel = tensors.pop(f"{module}.weight")
    if kernel.ndim == 4:
        # (out, in, kh, kw) -> (kw, kh, in, out): Keras's (kh, kw, in, out) of the
        # transposed kernel, so that upright images give the transposed image's logits.
        kernel = kernel.transpose(3, 2, 1, 0)
    else:
        kernel = kernel.T  # Linear (out, in) -> Dense (in, out)
    return [kernel, tensors.pop(f"{module}.bias")]


def paper_model(checkpoint: PaperCheckpoint, all_outputs: bool = False) -> keras.Model:
    """The Keras model of a read checkpoint (see `from_paper_checkpoint`).

    Args:
        checkpoint: What `read_paper_checkpoint` returned.
        all_outputs: Keep all 62 outputs (the author's readout) instead of the
            26 letters.

    Returns:
        An uncompiled `vgg5` / `spinal_vgg5` model (float32 logits).

    Raises:
        PaperCheckpointError: On a missing key, an unexpected key or a wrong shape.
    """
    path, tensors = checkpoint.path, dict(checkpoint.tensors)
    mapping = _mapping(checkpoint.architecture)
    expected = {
        f"{module}.{name}"
        for module, layer in mapping.items()
        for name in (_BN_STATS if "_bn" in layer else ("weight", "bias"))
    }
    missing = sorted(expected - set(tensors), key=_natural)
    if missing:
        raise _refuse(path, f"missing key {missing[0]} (a {checkpoint.architecture} needs it).")
    unexpected = sorted(set(tensors) - expected, key=_natural)
    if unexpected:
        raise _refuse(path, f"unexpected key {unexpected[0]}: not part of the paper's models.")
    key = ("classifier.5" if checkpoint.architecture == "vgg5" else "fc_out.1") + ".weight"
    if tensors[key].shape[0] != PAPER_OUTPUTS:
        raise _refuse(
            path, f"{key} has {tensors[key].shape[0]} outputs; the paper's models have 62."
        )
    kwargs: dict[str, Any] = {"num_classes": PAPER_OUTPUTS, "dropout": 0.0}
    if checkpoint.architecture == "spinal_vgg5":
        kwargs["spinal_width"] = int(tensors["fc_spinal_layer1.1.weight"].shape[0])
    model = models.BUILDERS[checkpoint.architecture](
        name=f"paper_{checkpoint.architecture}", **kwargs
    )
    features = model.get_layer("flatten").input.shape
    if tuple(features[1:3]) != (1, 1):  # the flatten order is the author's only at 1x1
        raise _refuse(path, f"the feature map before the head is {features[1:3]}, not 1x1.")
    for module, name in mapping.items():
        layer = model.get_layer(name)
        weights = _keras_weights(layer, module, tensors)
        for (suffix, array), variable in zip(_named(layer, weights), layer.weights):
            if tuple(array.shape) != tuple(variable.shape):
                raise _refuse(
                    path,
                    f"{module}.{suffix} has shape {_torch_shape(array.shape)}, expected "
                    f"{_torch_shape(variable.shape)} for {checkpoint.architecture}.",
                )
        layer.set_weights(weights)
    if all_outputs:
        return model
    return letters_model(model, checkpoint.architecture, kwargs)


def _named(layer, weights: list) -> list[tuple[str, np.ndarray]]:
    """`(PyTorch name, array)` of each of `layer`'s weights."""
    names = _BN_STATS if isinstance(layer, keras.layers.BatchNormalization) else ("weight", "bias")
    return list(zip(names, weights))


def _torch_shape(shape: tuple) -> tuple:
    """A Keras weight's shape in PyTorch's layout (for messages): kernels reversed."""
    return tuple(reversed(tuple(shape)))


def letters_model(model: keras.Model, architecture: str, kwargs: dict) -> keras.Model:
    """The 26-output copy of a 62-output paper model: outputs 1..26 (labels 0..25)."""
    kwargs = {**kwargs, "num_classes": 26}
    letters = models.BUILDERS[architecture](name=model.name, **kwargs)
    for layer in letters.layers:
        if not layer.weights:
            continue
        weights = model.get_layer(layer.name).get_weights()
        if layer.name == "logits":
            weights = [weights[0][:, LETTER_OUTPUTS], weights[1][LETTER_OUTPUTS]]
        layer.set_weights(weights)
    return letters


def _natural(key: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def from_paper_checkpoint(path: str | os.PathLike, all_outputs: bool = False) -> keras.Model:
    """One of the paper's PyTorch checkpoints as this package's Keras model.

    Reads the file safely (`read_paper_checkpoint`: no pickled code runs),
    recognises VGG-5 or Spinal-VGG-5 from its keys and returns the model
    `vgg5()` / `spinal_vgg5()` builds (raw pixels 0..255 in, the normalisation
    with mean 0.1307 and std 0.3081 inside, float32 logits out) holding the
    author's weights and BatchNorm statistics.

    It takes **upright** images, as this package's loaders give them, and gives
    the logits the author's model gives for the **transposed** image (the
    orientation torchvision fed it): every 3x3 kernel is transposed.

    The author's 62 outputs become 26: columns 1..26, this package's labels
    0..25. This cannot lower accuracy against the author's 62-way argmax: where
    the 62-way argmax falls in 1..26 it is also the argmax of those 26 columns,
    so the two predictions agree; where it falls outside (0 or 27..61, never a
    target), the 62-way prediction was wrong anyway, and the 26-way one may be
    right. `all_outputs=True` keeps the 62 outputs (the author's readout, for
    labels 1..26); `python -m keras_minent evaluate` reports both.

    The loss weights the author trained (`loss_module.loss_1_weight` /
    `loss_2_weight`) are in `read_paper_checkpoint(path).loss_weights`.

    Args:
        path: The `.pt` file (e.g. `95.933_min_ent_vgg_emnist_letters.pt`).
        all_outputs: Keep all 62 outputs instead of the 26 letters.

    Returns:
        An uncompiled `keras.Model` with float32 logits (26 or 62 outputs).

    Raises:
        PaperCheckpointError: If the file cannot be read safely, or a key is
            missing, unexpected or of the wrong shape (the message names it).
        MissingExtraError: If PyTorch is not installed
            (`pip install "keras-minent[torch]"`).

    Example:
    ```python
    model = keras_minent.models.from_paper_checkpoint("95.933_min_ent_vgg_emnist_letters.pt")
    model.compile(metrics=["accuracy"])  # labels 0..25, upright images
    ```
    """
    return paper_model(read_paper_checkpoint(path), all_outputs=all_outputs)
