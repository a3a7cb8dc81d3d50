"""keras-minent: MIN-ENT and MIX-ENT losses, VGG-5 and EMNIST-Letters for Keras 3.

The losses regularize cross entropy with a minimum-entropy term (MIN-ENT) or a
"swapped" cross entropy (MIX-ENT), after A. O. Ibraheem, arXiv:2501.13709.

`import keras_minent` registers every serializable object of the package (losses as
classes and functions, metrics, layers, calibration), so that any `.keras` file this
package writes loads with `keras.saving.load_model` after that import alone. Modules
with optional dependencies (`keras_minent.datasets`, `keras_minent.training`,
`keras_minent.tuning`, `keras_minent.distribute`) are imported only when used (they
are attributes of the package all the same), so `import keras_minent` needs only Keras
and NumPy, on any backend.
"""

from __future__ import annotations

import importlib

from keras_minent._plotting import MissingExtraError, backend_missing

try:
    import keras  # noqa: F401 - fails when KERAS_BACKEND's package is not installed
except ImportError as _error:
    # The command line (`keras_minent.cli`) still imports, and says in one line what
    # to install; every other use raises the same MissingExtraError.
    _BACKEND_ERROR: MissingExtraError | None = backend_missing(_error)
    if _BACKEND_ERROR is None:
        raise
else:
    _BACKEND_ERROR = None
    # Imported here (not lazily) because they register serializable classes.
    from keras_minent import calibration, losses, metrics, models
    from keras_minent.losses import PAPER_SETTINGS, MinEntLoss, MixEntLoss
    from keras_minent.models import spinal_vgg5, vgg5

__version__ = "0.1.0"

__all__ = [
    "PAPER_SETTINGS",
    "MinEntLoss",
    "MixEntLoss",
    "__version__",
    "calibration",
    "from_paper_checkpoint",
    "losses",
    "metrics",
    "models",
    "spinal_vgg5",
    "vgg5",
]

_LAZY_MODULES = (
    "datasets",
    "distribute",
    "paper_checkpoint",
    "paper_files",
    "testing",
    "training",
    "tuning",
)


def __getattr__(name: str):
    if _BACKEND_ERROR is not None and not name.startswith("__"):
        raise _BACKEND_ERROR
    if name == "from_paper_checkpoint":  # imports its module (and the data errors) when used
        return models.from_paper_checkpoint
    if name in _LAZY_MODULES:
        return importlib.import_module(f"keras_minent.{name}")
    raise AttributeError(f"module 'keras_minent' has no attribute {name!r}")
