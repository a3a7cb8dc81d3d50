"""keras-minent: MIN-ENT and MIX-ENT losses, VGG-5 and EMNIST-Letters for Keras 3.

The losses regularize cross entropy with a minimum-entropy term (MIN-ENT) or a
"swapped" cross entropy (MIX-ENT), after A. O. Ibraheem, arXiv:2501.13709.

Modules that need TensorFlow or tensorflow-datasets (`keras_minent.datasets`,
`keras_minent.training`, `keras_minent.tuning`) are imported only when used (they are
attributes of the package all the same, e.g. `keras_minent.datasets.emnist_letters`), so
`import keras_minent` works on the JAX and PyTorch backends without TensorFlow.
"""

from __future__ import annotations

import importlib

from keras_minent import losses
from keras_minent.losses import PAPER_SETTINGS, MinEntLoss, MixEntLoss
from keras_minent.models import spinal_vgg5, vgg5

__version__ = "0.1.0"

__all__ = [
    "PAPER_SETTINGS",
    "MinEntLoss",
    "MixEntLoss",
    "__version__",
    "losses",
    "spinal_vgg5",
    "vgg5",
]

_LAZY_MODULES = (
    "calibration",
    "datasets",
    "distribute",
    "metrics",
    "models",
    "training",
    "tuning",
)


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        return importlib.import_module(f"keras_minent.{name}")
    raise AttributeError(f"module 'keras_minent' has no attribute {name!r}")
