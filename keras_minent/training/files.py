"""Atomic writes: a reader (or a restarted run) never sees a half-written file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np


def atomic_save(path: str, write: Callable[[str], Any]) -> None:
    """Calls `write(temp_path)`, then renames the temporary file to `path`.

    The temporary file is `<name>.<pid>.tmp<ext>` beside `path`: unique per
    process (several workers may share a directory) and with `path`'s
    extension (`model.save` needs `.keras`).
    """
    root, ext = os.path.splitext(path)
    tmp = f"{root}.{os.getpid()}.tmp{ext}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: str, payload: Any) -> None:
    """Writes `payload` as indented JSON (NumPy values as Python values), atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=2, default=_jsonable)

    atomic_save(path, write)


def save_model(model, path: str) -> None:
    """`model.save(path)`, atomically."""
    atomic_save(path, model.save)


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
