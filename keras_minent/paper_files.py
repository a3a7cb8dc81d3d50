"""The paper's published checkpoints as files: their names, git blob ids and download.

The author's repository publishes three VGG-5 checkpoints. Their git blob ids (the
SHA-1 of `b"blob <size>\\0" + content`, which the repository's tree lists) let a
download be verified without anyone here having had the files.
`paper_checkpoint_file("paper:min_ent")` downloads one into the data directory,
checks its blob id before it is kept, and reuses it afterwards.
"""

from __future__ import annotations

import hashlib
import os

from keras_minent.paper_checkpoint import PaperCheckpointError

#: Where the author's repository serves the files.
PAPER_URL = "https://github.com/rahmanoladi/Minimum-entropy-project/raw/main/vgg/models_directory/"

#: The published checkpoints by `paper:<name>`: (file name, git blob id, reported accuracy %).
PAPER_FILES = {
    "min_ent": (
        "95.933_min_ent_vgg_emnist_letters.pt",
        "e044d9fba146235c5985f2a4b1a564fb84e10358",
        95.933,
    ),
    "mix_ent": (
        "95.927_mix_ent_vgg_emnist_letters.pt",
        "83fc2e43fd5eef4eb224012a0d71089bdfdc698d",
        95.927,
    ),
    "ce": (
        "95.707_cross_ent_vgg_emnist_letters.pt",
        "133fb9f1a445064f2cdc59b5116b631fb1bdc0ad",
        95.707,
    ),
}
#: The subdirectory of the data directory that holds them.
SUBDIR = "paper_checkpoints"
PREFIX = "paper:"


def git_blob_id(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The git blob id of a file: SHA-1 of `b"blob <size>\\0"` and its content.

    Args:
        path: The file.
        chunk: Read size.

    Returns:
        40 hexadecimal digits, as `git hash-object` prints them.
    """
    digest = hashlib.sha1(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def known_blob_id(path: str | os.PathLike) -> tuple[str | None, bool | None]:
    """`(published blob id, whether the file has it)` where the file bears a published
    checkpoint's name; `(None, None)` for any other name."""
    name = os.path.basename(os.fspath(path))
    for file, blob, _ in PAPER_FILES.values():
        if name == file:
            return blob, git_blob_id(path) == blob
    return None, None


def check_blob_id(path: str | os.PathLike, expected: str, what: str) -> None:
    """Refuses a file whose git blob id is not `expected`.

    Args:
        path: The file.
        expected: Its published blob id.
        what: The file as the message names it (e.g. the URL it came from).

    Raises:
        PaperCheckpointError: If the blob id differs (a wrong, truncated or
            changed file).
    """
    got = git_blob_id(path)
    if got != expected:
        raise PaperCheckpointError(
            f"{what}: git blob id {got}, not the published {expected} "
            f"({os.path.getsize(path)} bytes): a different or incomplete file, refused."
        )


def paper_checkpoint_file(spec: str, data_dir: str | None = None, download: bool = True) -> str:
    """The local path of `paper:min_ent` / `paper:mix_ent` / `paper:ce`, downloaded if needed.

    A file already in `<data_dir>/paper_checkpoints/` is used when its blob id
    matches; else it is downloaded from the author's repository and kept only
    once its blob id matches (an interrupted or different download leaves nothing).

    Args:
        spec: `paper:<name>`, a key of `PAPER_FILES`.
        data_dir: The data directory (default: `$KERAS_MINENT_DATA` or
            `~/keras_minent_datasets`).
        download: Whether to download a missing file.

    Returns:
        The verified file's path.

    Raises:
        PaperCheckpointError: An unknown name, a file with another blob id, or a
            missing file that cannot be downloaded (the message says where to put it).

    Example:
    ```python
    path = paper_checkpoint_file("paper:min_ent", data_dir="data")
    ```
    """
    from keras_minent.datasets import arrays, idx
    from keras_minent.datasets import download as download_lib

    name = spec[len(PREFIX) :] if spec.startswith(PREFIX) else spec
    if name not in PAPER_FILES:
        names = ", ".join(PREFIX + n for n in PAPER_FILES)
        raise PaperCheckpointError(f"Unknown paper checkpoint {spec!r}: expected one of {names}.")
    file, blob, _ = PAPER_FILES[name]
    path = os.path.join(data_dir or arrays.default_data_dir(), SUBDIR, file)
    if os.path.isfile(path):
        check_blob_id(path, blob, f"{path} (delete it to download it again)")
        return path
    url = PAPER_URL + file
    where = f"download {url} elsewhere and put it at {path} (its git blob id {blob} is checked)"
    if not download:
        raise PaperCheckpointError(f"{spec}: {path} is missing and --no-download is set: {where}.")
    print(f"Downloading {url} ...")
    try:
        return download_lib.download(
            url, path, None, verify=lambda tmp: check_blob_id(tmp, blob, url)
        )
    except PaperCheckpointError:
        raise
    except idx.DataError as e:
        why = e.__cause__ or e
        raise PaperCheckpointError(f"{spec}: the download failed ({why}); {where}.") from e
