"""A tensorflow-datasets builder for EMNIST-Letters with the official split.

tfds's own `emnist/letters` reads only the first 88,800 / 14,800 images of
NIST's files and declares 37 classes; this builder reads all 124,800 / 20,800
images with 26 classes. Imported only when used (it needs tfds).
"""

from __future__ import annotations

import os
import socket

import numpy as np
import tensorflow_datasets as tfds

from keras_minent.datasets import idx

_HOST = "biometrics.nist.gov"


def _network_reachable(host: str = _HOST, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


class EmnistLettersOfficial(tfds.core.GeneratorBasedBuilder):
    """EMNIST-Letters, official split: 124,800 train / 20,800 test, labels 0..25."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "All examples of NIST's files; 26 classes; upright."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Optional (the builder downloads NIST's archive itself when online). To
    avoid the 562 MB download, put in this manual directory either NIST's
    `{idx.ZIP_NAME}` ({idx.URL}), or the four files
    {", ".join(idx.REQUIRED_FILES)}
    (the `gzip/` folder of that zip, or torchvision's `EMNIST/raw`).
    """
    #: SHA-256 a manually placed `gzip.zip` must have (None: do not check).
    expected_zip_sha256: str | None = idx.ZIP_SHA256

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=(
                "EMNIST-Letters with NIST's official split (124,800 training and "
                "20,800 test images, 26 classes, labels 0..25 for a/A..z/Z), "
                "images upright."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=idx.IMAGE_SHAPE),
                    "label": tfds.features.ClassLabel(
                        names=[chr(ord("a") + i) for i in range(idx.NUM_CLASSES)]
                    ),
                    # Position in NIST's file: makes the validation carve-out exact.
                    "index": tfds.features.Scalar(dtype=np.int32),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://www.nist.gov/itl/products-and-services/emnist-dataset",
            citation="""@article{cohen2017emnist,
  title={EMNIST: an extension of MNIST to handwritten letters},
  author={Cohen, Gregory and Afshar, Saeed and Tapson, Jonathan and van Schaik, Andre},
  journal={arXiv preprint arXiv:1702.05373}, year={2017}}""",
        )

    def _load_arrays(self, dl_manager) -> dict:
        manual = getattr(dl_manager, "_manual_dir", None)
        if manual is not None and os.path.isdir(manual):
            manual = os.fspath(manual)
            zip_path = os.path.join(manual, idx.ZIP_NAME)
            if os.path.isfile(zip_path):
                idx.check_zip(zip_path, self.expected_zip_sha256)
                return idx.read_zip(zip_path)
            if not idx.missing_files(manual):
                return idx.read_directory(manual)
            gz_dir = os.path.join(manual, "gzip")
            if os.path.isdir(gz_dir) and not idx.missing_files(gz_dir):
                return idx.read_directory(gz_dir)
        if not _network_reachable():
            where = os.fspath(manual) if manual else "<data_dir>/downloads/manual"
            raise idx.EmnistDataError(
                "EMNIST-Letters is not available offline and the network is unreachable.\n"
                f"Put NIST's {idx.ZIP_NAME} ({idx.URL}, {idx.ZIP_SIZE} bytes) in {where}, "
                "or pass `idx_dir=` (CLI: --idx-dir) a directory holding "
                + ", ".join(idx.REQUIRED_FILES)
                + " (NIST's gzip/ folder or torchvision's EMNIST/raw)."
            )
        # tfds verifies the download against checksums.tsv beside this module.
        return idx.read_zip(dl_manager.download(idx.URL))

    def _split_generators(self, dl_manager):
        arrays = self._load_arrays(dl_manager)
        return {split: self._generate_examples(*arrays[split]) for split in idx.SPLITS}

    def _generate_examples(self, images, labels):
        for i, (image, label) in enumerate(zip(images, labels)):
            yield i, {"image": image, "label": int(label), "index": i}
