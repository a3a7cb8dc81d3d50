"""Atomic, link-safe file writes: the one implementation the package uses.

A file is written under a fresh temporary name beside its final path (created
with `O_CREAT | O_EXCL` by `tempfile.mkstemp`, so a planted file or link there is
never written through), then renamed over the final name with `os.replace`,
which replaces a link at the final name instead of following it. The temporary
file is removed if anything fails.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def temp_path(path: str | os.PathLike) -> str:
    """A fresh empty file beside `path` (`O_EXCL`), with `path`'s extension."""
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    root, ext = os.path.splitext(name)
    fd, tmp = tempfile.mkstemp(prefix=f".{root}.", suffix=f".tmp{ext}", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual mode
    finally:
        os.close(fd)
    return tmp


def atomic_save(path: str | os.PathLike, write: Callable[[str], Any]) -> None:
    """Calls `write(temp_path)`, then renames the temporary file to `path`.

    The temporary file is a fresh, uniquely named file beside `path` (several
    workers may share a directory) with `path`'s extension (`model.save`
    needs `.keras`). A link at `path` is replaced, never followed.

    Args:
        path: The final file.
        write: Writes the file's contents to the path it is given.

    Raises:
        OSError: As `write` raised it; one that names no file (a write to an
            open file: no space, the file size limit) is given `path`'s name.
    """
    path = os.fspath(path)
    tmp = temp_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        if e.filename is None:
            e.filename = path  # the message names the file it could not write
        raise
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)
