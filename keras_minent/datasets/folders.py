"""Images in class folders, as `keras.utils.image_dataset_from_directory` reads them.

Two layouts:

```
data/train/<class>/*.png   data/test/<class>/*.png     # the split given
data/<class>/*.png                                     # one set: 1/6 held out as test
```

Class names are the folder names, sorted (class id = position); the files of
a class are found recursively and sorted by path. Files with the extensions
Keras reads (`.bmp`, `.gif`, `.jpeg`, `.jpg`, `.png`, any case) are images,
others are ignored. Images are read with Pillow: greyscale ones give one
channel; if any image has colour, all are read as RGB (3 channels, alpha
dropped). All images must have the same size.

In the second layout the test split is the first `round(n / 6)` positions of
`order.permutation(n, HOLDOUT_KEY)` over all images in reading order (sorted),
the rest is the training split.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from keras_minent.datasets import idx, order
from keras_minent.datasets.idx import DataError

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
#: The key of the held-out test split (the validation carve-out's seed, then 6).
HOLDOUT_KEY = (20250123, 6)
HOLDOUT_FRACTION = 1 / 6
_GREY_MODES = ("1", "L", "LA")
#: 16-bit grey: scaled to 8 bits (the top byte), as `keras.utils.image_dataset_from_directory`
#: (TensorFlow's image decoding) does.
_GREY16_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def _class_dirs(directory: str) -> list[str]:
    return sorted(
        d
        for d in os.listdir(directory)
        if not d.startswith(".") and os.path.isdir(os.path.join(directory, d))
    )


def _image_files(directory: str) -> list[str]:
    out = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        out += [os.path.join(root, f) for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(out)


def layout(directory: str) -> str | None:
    """`"split"` (`train/` and `test/`), `"classes"` (class folders) or None.

    Raises:
        DataError: If only one of `train/` and `test/` is there.
    """
    subdirs = _class_dirs(directory)
    if "train" in subdirs and "test" in subdirs:
        return "split"
    if "train" in subdirs or "test" in subdirs:
        have, lack = ("train", "test") if "train" in subdirs else ("test", "train")
        raise DataError(
            f"{directory} holds {have}/ but no {lack}/: give both (each with one folder per "
            "class), or the class folders directly (a test sixth is then held out)."
        )
    if any(_image_files(os.path.join(directory, d)) for d in subdirs):
        return "classes"
    return None


def _listing(directory: str, classes: list[str] | None = None) -> tuple[list, list, list]:
    """`(files, class ids, class names)` of one set of class folders."""
    names = _class_dirs(directory) if classes is None else classes
    if classes is not None:
        extra = sorted(set(_class_dirs(directory)) - set(classes))
        if extra:
            raise DataError(
                f"{directory} has class folders {extra} that the training split lacks."
            )
    files, labels = [], []
    for i, name in enumerate(names):
        found = _image_files(os.path.join(directory, name))
        if not found and classes is None:
            raise DataError(
                f"{os.path.join(directory, name)} holds no images "
                f"({', '.join(IMAGE_EXTENSIONS)}): an empty class folder is class {i} for "
                "keras.utils.image_dataset_from_directory but has no examples here. Add its "
                "images or remove the folder."
            )
        files += found
        labels += [i] * len(found)
    if not files:
        raise DataError(
            f"{directory} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in class folders."
        )
    return files, labels, names


def _read(files: list[str]) -> np.ndarray:
    from keras_minent._plotting import require

    image_lib = require("PIL.Image", "images", "Image folders (--dataset DIR)")
    arrays, first = [], None
    for path in files:
        try:
            with image_lib.open(path) as im:
                im.load()
                size, mode = im.size, im.mode
                if mode in _GREY16_MODES:
                    a = (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)
                elif mode in ("I", "F"):
                    a = None  # 32-bit pixels: no fixed range to map to 0..255
                else:
                    a = np.asarray(im.convert("L" if mode in _GREY_MODES else "RGB"), np.uint8)
        except image_lib.DecompressionBombError as e:
            raise DataError(
                f"{path}: too many pixels to read ({e}); images of a dataset are small. "
                "Remove or shrink it."
            ) from e
        except (OSError, ValueError, SyntaxError) as e:
            raise DataError(f"{path}: not a readable image ({e}).") from e
        if a is None:
            raise DataError(
                f"{path}: 32-bit {'float' if mode == 'F' else 'integer'} pixels (mode {mode}) "
                "have no fixed range: convert the images to 8 or 16 bits per channel."
            )
        if first is None:
            first = (path, size)
            idx.check_budget(  # all images have this size: refuse before reading them
                len(files) * a.size * 3, path, f"{len(files)} images of {size[0]}x{size[1]}"
            )
        elif size != first[1]:
            raise DataError(
                f"{path}: {size[0]}x{size[1]} pixels, but {first[0]} is "
                f"{first[1][0]}x{first[1][1]}: all images must have the same size."
            )
        arrays.append(a[..., None] if a.ndim == 2 else a)
    if any(a.shape[-1] == 3 for a in arrays):
        arrays = [np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a for a in arrays]
    return np.stack(arrays)


def holdout_mask(labels: np.ndarray) -> np.ndarray:
    """The held-out test images of a single folder of class folders, class by class.

    Of each class's `n` images (in sorted file order) the first
    `min(round(n / 6), n - 1)` of `order.permutation(n, HOLDOUT_KEY + (class id,))`
    are held out, so every class keeps at least one training image and the test
    split has each class's share.
    """
    mask = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        n = len(where)
        take = min(int(round(n * HOLDOUT_FRACTION)), n - 1)
        mask[where[order.permutation(n, (*HOLDOUT_KEY, int(c)))[:take]]] = True
    return mask


def _digest(files: list[str], root: str) -> str:
    """SHA-256 of the lines `"<path relative to root> <file SHA-256>\\n"`, in reading order."""
    text = "".join(f"{os.path.relpath(p, root)} {idx.sha256_of(p)}\n" for p in files)
    return hashlib.sha256(text.encode()).hexdigest()


def read_image_folders(directory: str) -> tuple[dict, dict]:
    """Reads images in class folders (either layout of the module docstring).

    Returns:
        `({split: (images uint8 (N, H, W, C), class ids)}, info)`; `info`
        holds `location`, `layout`, `class_names`, `files_list_sha256` (see
        `_digest`), `num_files`, `test_split` and `where`.

    Raises:
        DataError: For a directory of neither layout, a split without images,
            an unreadable image or images of different sizes.
        MissingExtraError: If Pillow is not installed.
    """
    kind = layout(directory)
    if kind is None:
        raise DataError(f"{directory} holds no class folders of images.")
    if kind == "split":
        train_dir, test_dir = os.path.join(directory, "train"), os.path.join(directory, "test")
        train_files, train_y, names = _listing(train_dir)
        test_files, test_y, _ = _listing(test_dir, names)
        held_out = "the test/ folder"
        where = {"train": train_dir, "test": test_dir}
    else:
        files, labels, names = _listing(directory)
        mask = holdout_mask(np.asarray(labels, np.int64))
        train_files = [f for f, m in zip(files, mask) if not m]
        test_files = [f for f, m in zip(files, mask) if m]
        train_y = [y for y, m in zip(labels, mask) if not m]
        test_y = [y for y, m in zip(labels, mask) if m]
        held_out = (
            f"held out per class: of a class's n images (sorted), the first "
            f"min(round(n/6), n-1) of order.permutation(n, key={HOLDOUT_KEY} + (class id,)); "
            f"{int(mask.sum())} of {len(files)} images"
        )
        where = {"train": directory, "test": directory}
    if not train_files or not test_files:
        split = "training" if not train_files else "test"
        raise DataError(f"{directory}: the {split} split has no images.")
    all_files = train_files + test_files
    images = _read(all_files)
    raw = {
        "train": (images[: len(train_files)], np.asarray(train_y, np.int64)),
        "test": (images[len(train_files) :], np.asarray(test_y, np.int64)),
    }
    info = {
        "location": os.path.abspath(directory),
        "layout": "train/ and test/ class folders" if kind == "split" else "class folders",
        "class_names": names,
        "files_list_sha256": _digest(all_files, directory),
        "num_files": len(all_files),
        "test_split": held_out,
        "where": where,
    }
    return raw, info
