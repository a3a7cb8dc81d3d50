#!/usr/bin/env bash
# A fresh venv with keras + jax + this package (built from the source tree) + pytest,
# and NOT TensorFlow: the data path must work there (issue 15).
#
# Usage: tests/no_tensorflow_venv.sh [WORK_DIR]   (default: a new temporary directory)
# PYTHON selects the interpreter that makes the venv (default: python3).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-$(mktemp -d)}
PYTHON=${PYTHON:-python3}
mkdir -p "$WORK/src"
# Only what the package build needs (no build/ or egg-info left in the checkout).
cp -r "$REPO/keras_minent" "$REPO/setup.cfg" "$REPO/pyproject.toml" "$REPO/README.md" \
    "$REPO/LICENSE" "$WORK/src/"
find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
CONSTRAINTS=()
if [ -f "$REPO/.ci/constraints.txt" ]; then CONSTRAINTS=(-c "$REPO/.ci/constraints.txt"); fi
"$VPY" -m pip install -q --disable-pip-version-check "${CONSTRAINTS[@]}" \
    "keras>=3.10,<4" "jax>=0.4.30,<1" pytest "$WORK/src"
if "$VPY" -c "import tensorflow" 2>/dev/null; then
    echo "FAIL: tensorflow is importable in the venv" >&2
    exit 1
fi
cd "$WORK"
KERAS_BACKEND=jax "$VPY" - "$WORK" <<'PY'
import os
import sys

import keras
import numpy as np

import keras_minent
import keras_minent.datasets as datasets
from keras_minent.datasets import idx

work = sys.argv[1]
raw, data = os.path.join(work, "raw"), os.path.join(work, "data")
idx.write_official_files(
    raw,
    {"train": idx.synthetic_letters(240, 1), "test": idx.synthetic_letters(48, 2)},
    synthetic=True,
)
x, y, record = datasets.load_arrays_with_info("train_without_validation", data, raw)
vx, vy = datasets.load_arrays("validation", data)
assert x.shape == (220, 28, 28, 1) and x.dtype == np.uint8 and len(vx) == 20, x.shape
assert record["source"] == "synthetic", record
ds = datasets.training_dataset(x, y, 20, seed=0, epochs=2)
assert isinstance(ds, keras.utils.PyDataset), type(ds)
batches = [ds[i] for i in range(len(ds))]
assert len(batches) == 11 and batches[0][0].shape == (20, 28, 28, 1)
inputs = keras.Input((28, 28, 1))
model = keras.Model(inputs, keras.layers.Dense(26)(keras.layers.Flatten()(inputs)))
model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(ds, epochs=2, steps_per_epoch=len(ds), shuffle=False, verbose=0,
          validation_data=datasets.evaluation_dataset(vx, vy, 10))
assert "tensorflow" not in sys.modules, "the data path imported TensorFlow"
print("no-tensorflow venv OK:", keras.__version__, keras.backend.backend(), keras_minent.__name__)
PY
