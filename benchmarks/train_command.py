"""The real main job, timed: `python -m keras_minent train` per epoch vs its training steps.

Runs the train command in this process (`keras_minent.cli.main`, the same code as
`python -m keras_minent train`) on `--synthetic` data of EMNIST-Letters' size
(124,800 training images = 114,400 fit + 10,400 validation, 20,800 test), and
records when each epoch begins and when its end-of-epoch work (validation pass,
metrics, `checkpoint.keras`/`best.keras`/`state.json`, learning-rate rule) is
done. Then, in the same process and with the same model, loss, batch, precision
and steps per execution, it times the training steps alone (`train_step.py`'s
`model.fit` on in-memory arrays, no validation, no callbacks). One row:

* `epoch_s`: median whole-epoch time over epochs 2..E (epoch 1 compiles);
* `epoch_images_per_s`: fit images / `epoch_s`;
* `step_images_per_s`: the training steps alone;
* `outside_steps`: 1 - step time / epoch time, the share spent outside training steps;
* `recipe_200_epochs_min`: 200 x `epoch_s` (the paper's recipe, end to end but for
  the final evaluation), in minutes.

    KERAS_BACKEND=jax python benchmarks/train_command.py --epochs 4
    KERAS_BACKEND=jax python benchmarks/train_command.py --size 511 --batch-size 52 --epochs 3  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import keras  # noqa: E402
from common import emit, machine  # noqa: E402

from keras_minent import cli  # noqa: E402
from keras_minent.training import callbacks as run_callbacks  # noqa: E402


def timed_train(argv: list[str]) -> tuple[list[float], list[float]]:
    """Runs the train command; returns the epochs' begin and end-of-epoch-done times."""
    begins, ends = [], []
    cls = run_callbacks.RunState
    on_begin, on_end = cls.on_epoch_begin, cls.on_epoch_end

    def begin(self, epoch, logs=None):
        begins.append(time.perf_counter())
        return on_begin(self, epoch, logs)

    def end(self, epoch, logs=None):
        out = on_end(self, epoch, logs)  # saves the checkpoint and state.json
        ends.append(time.perf_counter())
        return out

    cls.on_epoch_begin, cls.on_epoch_end = begin, end
    try:
        rc = cli.main(["train", *argv])
        if rc:
            raise SystemExit(f"the train command failed (exit status {rc})")
    finally:
        cls.on_epoch_begin, cls.on_epoch_end = on_begin, on_end
    return begins, ends


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, default=124800, help="generated training images")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--epochs", type=int, default=4, help=">= 3: epoch 1 compiles")
    p.add_argument("--precision", default="auto")
    p.add_argument("--loss", default="min_ent")
    p.add_argument("--output-dir", default=None, help="default: a temporary directory")
    p.add_argument("--json", default=None)
    p.add_argument("--no-step-only", action="store_true", help="skip the step-only timing")
    args = p.parse_args(argv)
    if args.epochs < 3:
        p.error("--epochs must be >= 3")
    print(machine(), flush=True)
    out = args.output_dir or tempfile.mkdtemp(prefix="keras_minent_train_")
    argv = [
        "--synthetic", "--synthetic-size", str(args.size), "--batch-size", str(args.batch_size),
        "--epochs", str(args.epochs), "--precision", args.precision, "--loss", args.loss,
        "--output-dir", out, "--verbose", "2",
    ]  # fmt: skip
    t0 = time.perf_counter()
    begins, ends = timed_train(argv)
    total = time.perf_counter() - t0
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    n_fit = results["num_examples"]["fit"]
    periods = [e - b for b, e in zip(begins, ends)]
    epoch_s = statistics.median(periods[1:])
    row = {
        "backend": keras.backend.backend(),
        "precision": results["precision"],
        "precision_reason": (results.get("precision_choice") or {}).get("reason"),
        "batch": args.batch_size,
        "fit_images": n_fit,
        "epochs": len(periods),
        "first_epoch_s": round(periods[0], 2),
        "epoch_s": round(epoch_s, 3),
        "fit_only_s": round(statistics.median(results_epoch_times(out)[1:]), 3),
        "epoch_images_per_s": round(n_fit / epoch_s, 1),
        "recipe_200_epochs_min": round(200 * epoch_s / 60, 2),
        "command_total_s": round(total, 1),
    }
    if not args.no_step_only:
        import train_step

        spe = results["config"]["steps_per_execution"]
        if spe == "auto":
            spe = 8 if results["device"]["kind"] == "gpu" else 1
        steps = -(-n_fit // args.batch_size)
        step = train_step.measure(
            args.loss, results["precision"], args.batch_size, steps, 2, True, spe
        )
        row["spe"] = spe
        row["step_images_per_s"] = step["images_per_s"]
        row["whole_epoch_vs_steps"] = round(row["epoch_images_per_s"] / step["images_per_s"], 3)
        row["outside_steps"] = round(1 - row["whole_epoch_vs_steps"], 3)
    emit([row], f"train command, whole epochs vs training steps ({keras.backend.backend()})",
         args.json)  # fmt: skip
    return [row]


def results_epoch_times(out: str) -> list[float]:
    """RunState's own epoch times (fit's epoch incl. validation, before the checkpoint)."""
    with open(os.path.join(out, "state.json")) as f:
        return json.load(f)["epoch_times"]


if __name__ == "__main__":
    main()
