"""Output files: atomic writes that never follow a link, and one-line file-system errors.

Every file of a run is written under a fresh temporary name in its directory
(created with `O_CREAT | O_EXCL`, so a planted file or link there is never
written through), then renamed over the final name with `os.replace`, which
replaces a link at the final name instead of following it. The temporary
file is removed if anything fails.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np

from keras_minent._atomic import atomic_save  # noqa: F401 - public here too
from keras_minent._portable_save import save_portable
from keras_minent.errors import (  # noqa: F401 - public here too
    NonFiniteLossError,
    OutputError,
    ResumeError,
    RunError,
)

#: File-system errors reported in one line (exit status 2) instead of a traceback.
OUTPUT_ERRNOS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a path component is not a directory",
    errno.EEXIST: "a file is in the way",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EFBIG: "file too large (file size limit)",
    errno.EISDIR: "is a directory",
}


@contextlib.contextmanager
def output_errors(what: str = "the run") -> Iterator[None]:
    """Turns the file-system errors of `OUTPUT_ERRNOS` into an `OutputError`."""
    try:
        yield
    except OSError as e:
        if e.errno not in OUTPUT_ERRNOS:
            raise
        where = e.filename or "a file"
        raise OutputError(
            f"cannot use {where} (run in {what}): {OUTPUT_ERRNOS[e.errno]}. "
            "Free space, fix the permissions, or choose another --output-dir."
        ) from e


def publish(source: str, path: str) -> None:
    """Makes `path` a copy of the file `source` (a hard link where possible), atomically."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        try:
            os.link(source, tmp)  # fails if tmp exists: never writes through a link
        except OSError:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
                shutil.copyfileobj(src, dst)
        os.replace(tmp, path)
    except OSError as e:
        if e.filename is None:
            e.filename = path  # a failed copy names the file it could not write
        raise
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def remove(path: str) -> None:
    """Removes a file if it is there (a link is removed, not its target)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def write_json(path: str, payload: Any) -> None:
    """Writes `payload` as indented JSON (NumPy values as Python values), atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=2, default=_jsonable)

    atomic_save(path, write)


def save_model(model, path: str) -> None:
    """`model.save(path)`, atomically, loadable by Keras 3.10 too (`save_portable`)."""
    atomic_save(path, lambda tmp: save_portable(model, tmp))


def read_json_file(path: str, what: str, fix: str, error: type = ResumeError) -> Any:
    """The JSON in `path`, or an `error` naming the file, what it is and `fix`."""
    try:
        with open(path) as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise error(f"{path} ({what}) is corrupt ({e}). {fix}") from e


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
