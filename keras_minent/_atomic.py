"""Atomic, link-safe file writes: the one implementation the package uses.

Every output (models, JSON files, plots, dataset caches and records) is
written under a fresh temporary name beside its final path, then renamed over
the final name with `os.replace`, which replaces a link at the final name
instead of following it. The temporary file is created exclusively
(`O_CREAT | O_EXCL`, or a hard link, which also fails if the name exists), so
a planted file or link there is never written through; it is removed if
anything fails.

Temporary names have one pattern, `TEMP_NAME`: `.<stem>.<random>.tmp<ext>` for
a final name `<stem><ext>` (`model.save` needs the `.keras` extension). A
process killed mid-write leaves such a file; `remove_temp_files` removes them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Collection
from typing import Any

import numpy as np

#: A temporary file's name: `.<stem>.<random>.tmp<ext>` for the final name `<stem><ext>`.
TEMP_NAME = re.compile(r"^\.(?P<stem>.+)\.(?P<random>[0-9A-Za-z_]+)\.tmp(?P<ext>\.[^.]+)?$")
_TRIES = 100


def temp_name(path: str | os.PathLike) -> str:
    """A fresh temporary name beside `path` (not created), in the `TEMP_NAME` pattern."""
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    stem, ext = os.path.splitext(name)
    return os.path.join(directory, f".{stem}.{secrets.token_hex(8)}.tmp{ext}")


def temp_path(path: str | os.PathLike) -> str:
    """A fresh empty file beside `path` (`O_EXCL`), with `path`'s extension.

    Raises:
        OSError: If it cannot be created (naming the temporary file).
    """
    for _ in range(_TRIES):
        tmp = temp_name(path)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue  # another file has the name: never written through
        return tmp
    raise FileExistsError(f"No free temporary name beside {os.fspath(path)}.")


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

    Example:

    ```python
    atomic_save("model.keras", model.save)
    ```
    """
    path = os.fspath(path)
    _commit(temp_path(path), path, write)


def publish(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """Makes `path` a copy of the file `source` (a hard link where possible), atomically.

    Args:
        source: The file to publish.
        path: The name it gets; a link there is replaced, never followed.

    Raises:
        OSError: If neither a link nor a copy can be made (naming `path` when
            the error names no file).
    """
    path = os.fspath(path)
    tmp = temp_name(path)
    try:
        os.link(source, tmp)  # fails if tmp exists: never writes through a link
    except OSError:  # no hard links here (or a name taken): a copy, written atomically
        atomic_save(path, lambda tmp: _copy(source, tmp))
        return
    _commit(tmp, path, lambda tmp: None)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes `data` to `path`, atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_save(path, write)


def write_json(
    path: str | os.PathLike, payload: Any, *, sort_keys: bool = False, newline: bool = False
) -> None:
    """Writes `payload` as indented JSON (NumPy values as Python values), atomically.

    Args:
        path: The JSON file.
        payload: What to write; NumPy scalars and arrays become numbers and
            lists, other values JSON cannot hold their `str`.
        sort_keys: Whether to sort the keys of objects.
        newline: Whether to end the file with a newline.
    """

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=sort_keys, default=_jsonable)
            if newline:
                f.write("\n")

    atomic_save(path, write)


def remove_temp_files(directory: str | os.PathLike, finals: Collection[str] | None = None) -> None:
    """Removes the temporary files a killed write left in `directory`.

    Args:
        directory: The directory to tidy (not its subdirectories).
        finals: Only the temporary files of these final names (e.g.
            `{"state.json"}`); None: every temporary file.
    """
    for name in os.listdir(directory):
        match = TEMP_NAME.match(name)
        if match and (finals is None or match["stem"] + (match["ext"] or "") in finals):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, name))


def _commit(tmp: str, path: str, write: Callable[[str], Any]) -> None:
    """`write(tmp)`, then `tmp` renamed to `path`; `tmp` is removed if anything fails."""
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


def _copy(source: str | os.PathLike, tmp: str) -> None:
    with open(source, "rb") as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
