"""A tensorflow-datasets builder for EMNIST-Letters with the official split.

tfds's own `emnist/letters` reads only the first 88,800 / 14,800 images of
NIST's files and declares 37 classes; this builder reads all 124,800 / 20,800
images with 26 classes. Imported only when used (it needs tfds).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from keras_minent.datasets import arrays as arrays_lib
from keras_minent.datasets import download as download_lib
from keras_minent.datasets import idx, records


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

    #: The provenance record of the last preparation (written beside the data).
    provenance_record: dict | None = None

    def _load_arrays(self, dl_manager) -> dict:
        # The manual directory, else the archive in <data_dir>/downloads that the NumPy
        # loader shares, else a download to that same file (one copy for both loaders).
        root = os.fspath(self.data_dir_root)
        manual = getattr(dl_manager, "_manual_dir", None)
        manual = os.fspath(manual) if manual is not None else arrays_lib.manual_dir(root)
        source = arrays_lib.local_source(root, manual, self.expected_zip_sha256)
        if source is None:
            if not download_lib.network_reachable():
                raise idx.EmnistDataError(arrays_lib.missing_data_message(root, manual, True))
            source = arrays_lib.download_archive(root)
        return self._record(arrays_lib.read_source(source), source)

    def _record(self, arrays: dict, source: dict) -> dict:
        self.provenance_record = records.make_record(arrays, source)
        return arrays

    def _split_generators(self, dl_manager):
        arrays = self._load_arrays(dl_manager)
        for split in idx.SPLITS:  # tfds would fail later with an assertion of its own
            images, labels = arrays[split]
            if len(labels) == 0:
                where = getattr(dl_manager, "_manual_dir", None) or "the downloaded archive"
                raise idx.EmnistDataError(
                    f"The {split} split of {where} has 0 labels for {len(images)} images: "
                    "a run needs at least one example in each split."
                )
        return {split: self._generate_examples(*arrays[split]) for split in idx.SPLITS}

    def _generate_examples(self, images, labels):
        for i, (image, label) in enumerate(zip(images, labels)):
            yield i, {"image": image, "label": int(label), "index": i}
