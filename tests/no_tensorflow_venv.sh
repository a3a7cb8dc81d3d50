#!/usr/bin/env bash
# A fresh venv with this package's [jax,torch] extras (keras, jax, torch, matplotlib) and
# NOT TensorFlow, used as a user would:
#   1. the NumPy data path feeds fit (JAX);
#   2. the README's main-job command, `python -m keras_minent train --synthetic`, runs on
#      KERAS_BACKEND=jax and on KERAS_BACKEND=torch;
#   3. on each backend, a run stopped after epoch 1 and continued (`--epochs 1`, then
#      `--epochs 2` on the same directory) has the history of an uninterrupted 2-epoch run.
#
# Usage: tests/no_tensorflow_venv.sh [WORK_DIR]   (default: a new temporary directory)
# PYTHON selects the interpreter that makes the venv (default: python3).
# BACKENDS selects the backends of steps 2-3 (default: "jax torch").
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-$(mktemp -d)}
PYTHON=${PYTHON:-python3}
BACKENDS=${BACKENDS:-jax torch}
mkdir -p "$WORK/src"
# Only what the package build needs (no build/ or egg-info left in the checkout).
cp -r "$REPO/keras_minent" "$REPO/setup.cfg" "$REPO/pyproject.toml" "$REPO/README.md" \
    "$REPO/LICENSE" "$WORK/src/"
find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
CONSTRAINTS=()
if [ -f "$REPO/.ci/constraints.txt" ]; then CONSTRAINTS=(-c "$REPO/.ci/constraints.txt"); fi
SECONDS=0
# The extras alone must be a complete install of the main job (plots included).
"$VPY" -m pip install -q --disable-pip-version-check "${CONSTRAINTS[@]}" "$WORK/src[jax,torch]"
echo "install: ${SECONDS}s"
if "$VPY" -c "import tensorflow" 2>/dev/null; then
    echo "FAIL: tensorflow is importable in the venv" >&2
    exit 1
fi
# No HOME writes: Keras's config and any dataset cache go under WORK.
export HOME="$WORK/home" KERAS_HOME="$WORK/home/.keras" MPLBACKEND=Agg
mkdir -p "$HOME"
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
print("no-tensorflow data path OK:", keras.__version__, keras_minent.__name__)
PY
echo "data path: ${SECONDS}s"

# The main job, tiny, as the README writes it.
train() {  # backend dir epochs
    KERAS_BACKEND=$1 "$VPY" -m keras_minent train --synthetic --synthetic-size 113 \
        --batch-size 52 --epochs "$3" --verbose 0 --output-dir "$WORK/runs/$1/$2" \
        > "$WORK/runs/$1-$2-$3.log" 2>&1 || { cat "$WORK/runs/$1-$2-$3.log" >&2; return 1; }
}
mkdir -p "$WORK/runs"
for b in $BACKENDS; do
    # The uninterrupted run beside the stopped-and-continued one (2 cores: both at once).
    train "$b" whole 2 & pid=$!
    train "$b" resumed 1
    grep -q "Resuming" "$WORK/runs/$b-resumed-1.log" && { echo "FAIL: resumed too early" >&2; exit 1; }
    train "$b" resumed 2
    wait "$pid"
    grep -q "Resuming .* after epoch 1" "$WORK/runs/$b-resumed-2.log" \
        || { echo "FAIL: $b did not resume" >&2; cat "$WORK/runs/$b-resumed-2.log" >&2; exit 1; }
    echo "train $b: ${SECONDS}s"
done
"$VPY" - "$WORK/runs" $BACKENDS <<'PY'
import json
import os
import sys

import numpy as np

runs = sys.argv[1]
for backend in sys.argv[2:]:
    whole, resumed = (
        json.load(open(os.path.join(runs, backend, d, "results.json"))) for d in ("whole", "resumed")
    )
    assert whole["versions"]["backend"] == backend, whole["versions"]
    assert "tensorflow" not in whole["versions"], whole["versions"]
    assert whole["precision_choice"] == {
        "requested": "auto", "policy": "float32", "reason": "auto on a CPU: float32"
    }, whole["precision_choice"]
    h1, h2 = whole["history"], resumed["history"]
    assert sorted(h1) == sorted(h2) and all(len(v) == 2 for v in h1.values()), (h1, h2)
    worst = max(
        float(np.max(np.abs(np.subtract(h1[k], h2[k])) / np.maximum(np.abs(h1[k]), 1e-6)))
        for k in h1
    )
    # The same seeded batches, weights, optimizer and dropout state: equal up to the
    # float32 rounding of reloaded state (seen: 0 on both backends).
    assert worst <= 1e-5, f"{backend}: resumed history differs by {worst:.3g}:\n{h1}\n{h2}"
    for f in ("curves.png", "best.keras", "checkpoint.keras"):
        assert os.path.isfile(os.path.join(runs, backend, "resumed", f)), f
    print(f"train on {backend}: resumed = uninterrupted (largest relative difference {worst:.3g})")
print("no-tensorflow venv OK")
PY
echo "total: ${SECONDS}s"
