"""Output files: one-line file-system errors, and the run's writes.

Every file of a run is written atomically, never through a link, by
`keras_minent._atomic` (`atomic_save`, `publish`, `write_json`, re-exported
here).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from typing import Any

from keras_minent._atomic import (  # noqa: F401 - public here too
    atomic_save,
    publish,
    remove_temp_files,
    write_json,
)
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


def remove(path: str) -> None:
    """Removes a file if it is there (a link is removed, not its target)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


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
