"""Throughput of the EMNIST-Letters input pipeline (images/s), without a model.

1. `training_dataset`: the per-epoch shuffled batches fed to `fit`, gathered
   from in-memory arrays (what `keras_minent train` uses).
2. The same plus the recipe's augmentation applied in tf.data on the CPU
   (for comparison; training applies it inside the model, on the accelerator).
3. Reading a prepared tfds split into arrays (`load_arrays`), done once per run.

Images are generated in EMNIST's format (speed does not depend on content).

    python benchmarks/input_pipeline.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402

from keras_minent import datasets, models  # noqa: E402
from keras_minent.datasets import idx  # noqa: E402


def rate(ds, limit_batches: int) -> float:
    n, t0 = 0, time.perf_counter()
    for i, (x, _) in enumerate(ds):
        n += int(x.shape[0])
        if i + 1 >= limit_batches:
            break
    return n / (time.perf_counter() - t0)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--num", type=int, default=124_800)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--batches", type=int, default=1000)
    p.add_argument("--tfds-num", type=int, default=20_800)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    print(machine())
    tf = datasets.emnist.import_tensorflow()
    x, y = idx.synthetic_letters(args.num, seed=0)
    rows = []
    ds = datasets.training_dataset(x, y, args.batch, seed=0, epochs=100)
    rate(ds, 20)  # warm-up
    rows.append(
        {
            "stage": "training_dataset (shuffle, batch, prefetch)",
            "batch": args.batch,
            "images_per_s": round(rate(ds, args.batches)),
        }
    )
    aug = models.augmentation(seed=0)
    ds_aug = ds.map(
        lambda a, b: (aug(tf.cast(a, "float32"), training=True), b),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).prefetch(tf.data.AUTOTUNE)
    rate(ds_aug, 5)
    rows.append(
        {
            "stage": "+ augmentation in tf.data (CPU)",
            "batch": args.batch,
            "images_per_s": round(rate(ds_aug, max(20, args.batches // 10))),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        n = args.tfds_num
        idx.write_official_files(
            os.path.join(tmp, "raw"),
            {"train": idx.synthetic_letters(n, 1), "test": idx.synthetic_letters(n // 6, 2)},
        )
        t0 = time.perf_counter()
        datasets.builder(os.path.join(tmp, "tfds"), os.path.join(tmp, "raw"), download=False)
        prep = time.perf_counter() - t0
        t0 = time.perf_counter()
        xs, _ = datasets.load_arrays("train", os.path.join(tmp, "tfds"), download=False)
        rows.append(
            {
                "stage": "tfds prepare (once per data_dir)",
                "batch": None,
                "images_per_s": round(len(xs) / prep),
            }
        )
        rows.append(
            {
                "stage": "load_arrays from prepared tfds",
                "batch": None,
                "images_per_s": round(len(xs) / (time.perf_counter() - t0)),
            }
        )
    emit(rows, "input pipeline", args.json)
    return rows


if __name__ == "__main__":
    main()
