"""A tensorflow-datasets dataset (`--dataset mnist`, `cifar10`, `emnist/balanced`, ...).

tfds downloads and prepares it in the data directory (`--data-dir`, default
`$KERAS_MINENT_DATA`, else `~/keras_minent_datasets`: the one data directory of
every dataset and backend), checking the downloads against its
registered checksums. The dataset needs a `train` and a `test` split, an
image feature and a class-label feature (its supervised keys, else the
features `image` and `label`). Unknown names are refused at once (tfds's
list of builders); a known one that is not prepared fails fast when the
network is unreachable, saying where to put it.
"""

from __future__ import annotations

from keras_minent.datasets import download as download_lib
from keras_minent.datasets.arrays import default_data_dir
from keras_minent.datasets.idx import DataError

#: The host tfds's downloads and prepared copies mostly come from.
HOST = "storage.googleapis.com"


def _tfds():
    from keras_minent._plotting import require

    require("tensorflow", "tensorflow", "A tensorflow-datasets --dataset")
    return require(
        "tensorflow_datasets", "data", "A tensorflow-datasets --dataset (e.g. --dataset mnist)"
    )


def builder(name: str, data_dir: str | None = None, download: bool = True):
    """The prepared tfds builder of `name`.

    Raises:
        DataError: For an unknown name or configuration, or a dataset that
            is not prepared and cannot be downloaded now.
    """
    tfds = _tfds()
    base = name.split(":")[0].split("/")[0]
    if base not in tfds.list_builders(with_community_datasets=False):
        raise DataError(
            f"--dataset {name}: no such file or directory, and {base!r} is not a "
            "tensorflow-datasets name (see tfds.list_builders()); the other forms are "
            "emnist_letters, a directory of IDX files or of class folders, or a .npz file."
        )
    try:
        b = tfds.builder(name, data_dir=data_dir or default_data_dir())
    except Exception as e:  # tfds raises several kinds for a bad config or version
        raise DataError(f"--dataset {name}: {str(e).splitlines()[0]}") from e
    if b.is_prepared():
        return b
    where = b.data_dir_root if hasattr(b, "data_dir_root") else data_dir
    if not download:
        raise DataError(
            f"tensorflow-datasets {name} is not prepared in {where} and --no-download is given: "
            f"prepare it there (`tfds build {name} --data_dir {where}` on a machine with "
            "network), or copy a prepared one there."
        )
    if not download_lib.network_reachable(HOST):
        raise DataError(
            f"tensorflow-datasets {name} is not prepared in {where} and the network is "
            f"unreachable: prepare it on a machine with network (`tfds build {name} "
            f"--data_dir DIR`) and copy DIR/{base}/ into {where}/, or give --dataset its "
            "files (IDX directory, .npz, image folders)."
        )
    try:
        b.download_and_prepare()
    except Exception as e:  # network and checksum errors of many kinds
        raise DataError(
            f"tensorflow-datasets {name}: download or preparation failed ({e})."
        ) from e
    return b


def _keys(b, name: str) -> tuple[str, str]:
    import tensorflow_datasets as tfds

    features = b.info.features
    keys = b.info.supervised_keys
    if not keys or len(keys) != 2 or not all(isinstance(k, str) for k in keys):
        keys = ("image", "label")
    image, label = keys
    if image not in features or not isinstance(features[image], tfds.features.Image):
        raise DataError(f"tensorflow-datasets {name} has no image feature {image!r}.")
    if label not in features or not isinstance(features[label], tfds.features.ClassLabel):
        raise DataError(f"tensorflow-datasets {name} has no class-label feature {label!r}.")
    return image, label


def read_tfds(name: str, data_dir: str | None = None, download: bool = True) -> tuple[dict, dict]:
    """The `train` and `test` splits of a tfds dataset as arrays, in tfds's order.

    Returns:
        `({split: (images, labels)}, info)`; `info` holds `name` (tfds's full
        name), `version`, `location` (the prepared directory), `class_names`
        and `where`.

    Raises:
        DataError: See `builder`; also for a missing split or feature, or
            images of different sizes.
    """
    import numpy as np

    b = builder(name, data_dir, download)
    image_key, label_key = _keys(b, name)
    raw = {}
    for split in ("train", "test"):
        try:
            ds = b.as_dataset(split=split, shuffle_files=False)
            pairs = ds.map(lambda ex: (ex[image_key], ex[label_key])).batch(4096)
            images, labels = [], []
            for x, y in pairs.as_numpy_iterator():
                images.append(x)
                labels.append(y)
        except Exception as e:  # an unknown split, images of different sizes, ...
            raise DataError(
                f"tensorflow-datasets {name}, split {split!r}: {str(e).splitlines()[0][:300]}"
            ) from e
        if not images:
            raise DataError(f"tensorflow-datasets {name}: the {split} split is empty.")
        raw[split] = (np.concatenate(images), np.concatenate(labels))
    info = {
        "name": b.info.full_name,
        "version": str(b.info.version),
        "location": str(b.data_dir),
        "class_names": list(b.info.features[label_key].names),
        "where": {s: f"tensorflow-datasets {name} ({s})" for s in ("train", "test")},
    }
    return raw, info
