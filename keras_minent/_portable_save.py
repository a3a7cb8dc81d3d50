"""`.keras` files that the lowest supported Keras (3.10) loads, written by any newer Keras.

Newer Keras versions add constructor arguments and write them into every
saved config, at their defaults too: `input_axes` / `output_axes` of the
`VarianceScaling` initializers (Glorot, He, ...), `renorm*` of
`BatchNormalization`, `quantization_config` of `Dense`. Keras 3.10 refuses a
config with an argument it does not know (`VarianceScaling.__init__() got an
unexpected keyword argument 'input_axes'`). Such a key at its default says
nothing a config without it does not (every version that knows it defaults
to that value), so `save_portable` drops it from the file's `config.json`;
a non-default value is kept (and an older Keras rightly refuses the file).
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from typing import Any

from keras_minent._atomic import temp_path

#: Constructor arguments newer than Keras 3.10, with the default a newer Keras writes.
NEWER_ARGUMENTS: dict[str, dict[str, Any]] = {
    "VarianceScaling": {"input_axes": None, "output_axes": None},
    "BatchNormalization": {"renorm": False, "renorm_clipping": None, "renorm_momentum": 0.99},
    "Dense": {"quantization_config": None},
    "EinsumDense": {"quantization_config": None},
    "Embedding": {"quantization_config": None},
}
#: Keras's initializers that are `VarianceScaling` with fixed arguments.
VARIANCE_SCALING = (
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "LecunNormal",
    "LecunUniform",
)
CONFIG_NAME = "config.json"


def portable_config(config: Any) -> Any:
    """`config` (a saved model's `config.json`, parsed) without the `NEWER_ARGUMENTS`
    of Keras's own objects that are at their defaults; everything else unchanged."""
    if isinstance(config, list):
        return [portable_config(item) for item in config]
    if not isinstance(config, dict):
        return config
    out = {key: portable_config(value) for key, value in config.items()}
    name = out.get("class_name")
    name = "VarianceScaling" if name in VARIANCE_SCALING else name
    inner = out.get("config")
    module = out.get("module") or ""
    if name in NEWER_ARGUMENTS and isinstance(inner, dict) and module.startswith("keras."):
        defaults = NEWER_ARGUMENTS[name]
        out["config"] = {
            key: value
            for key, value in inner.items()
            if key not in defaults or value != defaults[key]
        }
    return out


def save_portable(model, path: str) -> None:
    """`model.save(path)`, then `config.json` inside the file made `portable_config`.

    The other members of the zip (weights, metadata) are copied unchanged.
    """
    model.save(path)
    with zipfile.ZipFile(path) as zin:
        config = json.loads(zin.read(CONFIG_NAME))
        portable = portable_config(config)
        if portable == config:
            return
        rewritten = temp_path(path)  # beside it, removed if anything fails
        try:
            with zipfile.ZipFile(rewritten, "w") as zout:
                for info in zin.infolist():
                    if info.filename == CONFIG_NAME:
                        zout.writestr(info, json.dumps(portable))
                        continue
                    with zin.open(info) as src, zout.open(info, "w") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
            os.replace(rewritten, path)
        finally:
            if os.path.lexists(rewritten):
                os.remove(rewritten)
