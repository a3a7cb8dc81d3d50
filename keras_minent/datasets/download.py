"""A plain download with a SHA-256 check (no tfds, no TensorFlow).

The file is written under a temporary name in the destination directory and
renamed into place only once its size and SHA-256 match, so an interrupted or
corrupt download is never used (and leaves no file behind).

Why not `keras.utils.get_file(file_hash=..., hash_algorithm="sha256")`: it
checks the same SHA-256, but (Keras 3.15, read here) it

* writes straight to the final name (`urlretrieve` into the cache), so a
  process killed mid-download leaves a partial file where the next run looks;
  here nothing reaches the final name before it is complete, checked and
  `fsync`ed;
* keeps a file whose hash does not match at the final name (and raises a
  `ValueError`); here a mismatched or short file is deleted and the error is
  the package's one-line `EmnistDataError`, which the CLI prints;
* checks nothing but a hash: the paper's checkpoints are known by their git
  blob ids (`keras_minent.paper_files`), checked here by `verify` before the
  rename; and the expected `size` is checked as well;
* has no timeout (`urlretrieve` waits on a stalled server for ever) and prints
  a progress bar to stdout, which the commands' output does not carry.

Everything else `get_file` does (the cache directory, extraction) the callers
do not need.
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
