"""A plain download with a SHA-256 check (no tfds, no TensorFlow).

The file is written under a temporary name in the destination directory and
renamed into place only once its size and SHA-256 match, so an interrupted or
corrupt download is never used (and leaves no file behind).
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable

from keras_minent.datasets import idx

HOST = "biometrics.nist.gov"


def network_reachable(host: str = HOST, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to `host:443` opens within `timeout` seconds."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def download(
    url: str,
    path: str | os.PathLike,
    sha256: str | None,
    size: int | None = None,
    timeout: float = 60.0,
    chunk: int = 1 << 20,
    verify: Callable[[str], None] | None = None,
) -> str:
    """Downloads `url` to `path`, atomically, checked by SHA-256.

    Args:
        url: What to download (any URL `urllib` opens, `file://` included).
        path: Where the verified file goes.
        sha256: The SHA-256 the file must have (None: checked by `verify` only).
        size: The size it must have, if known.
        timeout: Socket timeout in seconds.
        chunk: Read size.
        verify: Called with the downloaded file's temporary path before it is
            renamed into place; an exception it raises refuses the file (and
            passes through).

    Returns:
        `path`, as a string.

    Raises:
        EmnistDataError: If the download fails or the checksum does not match
            (nothing is left at `path` or beside it).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".part", dir=directory)
    digest, got = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for block in iter(lambda: resp.read(chunk), b""):
                out.write(block)
                digest.update(block)
                got += len(block)
            out.flush()
            os.fsync(out.fileno())
        if size is not None and got != size:
            raise idx.EmnistDataError(
                f"Download of {url} is incomplete: {got} bytes, expected {size}. Try again."
            )
        if sha256 is not None and digest.hexdigest() != sha256:
            raise idx.EmnistDataError(
                f"Download of {url}: checksum mismatch (SHA-256 {digest.hexdigest()}, "
                f"expected {sha256}). Nothing was kept; try again."
            )
        if verify is not None:
            verify(tmp)
        os.replace(tmp, path)
        return path
    except OSError as e:
        raise idx.EmnistDataError(
            f"Download of {urllib.parse.urlsplit(url).geturl()} failed ({e})."
        ) from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
