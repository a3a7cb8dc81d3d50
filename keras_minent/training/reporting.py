"""What a run reports: `results.json`, plots, console tables and seed statistics."""

from __future__ import annotations

import dataclasses
import math
import os
import platform
from typing import Any

import keras
import numpy as np

import keras_minent
from keras_minent import calibration
from keras_minent.training.callbacks import RunState
from keras_minent.training.config import OPTIMISTIC_NOTE, SYNTHETIC_NOTE, TrainConfig
from keras_minent.training.devices import precision_choice
from keras_minent.training.files import write_json


@dataclasses.dataclass
class FinishedRun:
    """A run whose training is done, as `report_run` needs it.

    Attributes:
        config: The run's configuration.
        state: Its run state (history, selected epoch, epoch times).
        data: Its arrays, `{"fit", "val", "test"}` as `(images, labels)`.
        wall_seconds: Wall time of this session's `fit`.
        precision: The dtype policy it trained with.
        device: The accelerator (`keras_minent.training.accelerator()`).
    """

    config: TrainConfig
    state: RunState
    data: dict[str, tuple[np.ndarray, np.ndarray]]
    wall_seconds: float
    precision: str
    device: dict[str, Any]


def note(config: TrainConfig) -> str | None:
    """The warning every output of the run carries (synthetic data), or None."""
    return SYNTHETIC_NOTE if config.synthetic else None


def report_run(run: FinishedRun) -> dict[str, Any]:
    """Evaluates the selected model, writes results.json and the plots, prints the summary."""
    from keras_minent import datasets

    config, state, out = run.config, run.state, run.config.output_dir
    x_fit = run.data["fit"][0]
    x_val, _ = val = run.data["val"]
    x_test, y_test = test = run.data["test"]
    best = keras.saving.load_model(os.path.join(out, "best.keras"))
    test_loss, test_acc = best.evaluate(
        datasets.evaluation_dataset(x_test, y_test, 1000), verbose=0, return_dict=False
    )[:2]
    title = _title(config)
    cal = _calibration_report(best, val, test, out, title)
    hist = state.history
    epochs_run = len(state.epoch_times)
    train_time = float(sum(state.epoch_times))
    results = {
        "note": note(config),
        "selection": (
            OPTIMISTIC_NOTE
            if config.selection == "test"
            else "best validation accuracy (validation split carved from training)"
        ),
        "selected_epoch": state.best_epoch + 1,
        "val_accuracy": hist["val_accuracy"][state.best_epoch],
        "test_accuracy": float(test_acc),
        "test_loss": float(test_loss),
        **cal,
        "epochs": epochs_run,
        "train_seconds": train_time,
        "wall_seconds_this_session": run.wall_seconds,
        "images_per_second": epochs_run * len(x_fit) / train_time if train_time else None,
        "num_examples": {"fit": len(x_fit), "val": len(x_val), "test": len(x_test)},
        "precision": run.precision,
        "precision_choice": precision_choice(config.precision, run.device, config.batch_size),
        "device": run.device,
        "versions": versions(),
        "config": dataclasses.asdict(config),
        "loss_config": keras.losses.serialize(config.build_loss()),
        "history": hist,
    }
    write_json(os.path.join(out, "results.json"), results)
    plot_curves(hist, os.path.join(out, "curves.png"), title=title)
    print_summary([results])
    return results


def _calibration_report(best, val, test, out: str, title: str) -> dict[str, float]:
    """Test-set ECE and entropy (with plots), and temperature scaling fitted on validation."""
    test_logits = np.asarray(best.predict(test[0], batch_size=1000, verbose=0), np.float64)
    calibrated, report = calibration.calibrate(best, *val)
    calibrated.save(os.path.join(out, "best_calibrated.keras"))
    t = report["temperature"]
    return {
        "test_ece": calibration.plot_reliability(
            test_logits, test[1], os.path.join(out, "reliability.png"), title=title
        ),
        "test_mean_entropy": calibration.plot_entropy_histogram(
            test_logits, os.path.join(out, "entropy_histogram.png"), title=title
        ),
        "temperature": t,
        "test_ece_after_temperature": calibration.ece(test_logits / t, test[1])[0],
        "test_nll": calibration.nll(test_logits, test[1]),
        "test_nll_after_temperature": calibration.nll(test_logits, test[1], t),
    }


def _title(config: TrainConfig) -> str:
    title = f"{config.model} + {config.loss} (seed {config.seed})"
    return f"{title}\n{note(config)}" if note(config) else title


def versions() -> dict[str, str]:
    """Versions of Python, Keras, the backend and keras-minent."""
    out = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "keras_minent": keras_minent.__version__,
        "backend": keras.backend.backend(),
    }
    for name in ("tensorflow", "jax", "torch", "numpy"):
        try:
            out[name] = __import__(name).__version__
        except Exception:
            pass
    return out


def plot_curves(history: dict, path: str, title: str = "") -> None:
    """Writes loss, accuracy and learning-rate curves per epoch as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        if key in history:
            axes[0].plot(epochs, history[key], label=label)
    axes[0].set(title="loss", xlabel="epoch")
    for key, label in (("accuracy", "train"), ("val_accuracy", "validation")):
        if key in history:
            axes[1].plot(epochs, history[key], label=label)
    axes[1].set(title="accuracy", xlabel="epoch")
    if "learning_rate" in history:
        axes[2].semilogy(epochs, history["learning_rate"])
    axes[2].set(title="learning rate", xlabel="epoch")
    for ax in axes[:2]:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_summary(rows: list[dict]) -> None:
    """Prints a short table of runs."""
    print()
    print(
        f"{'run':<34} {'epoch':>5} {'val acc':>8} {'test acc':>8} {'ECE %':>6} "
        f"{'H nats':>7} {'time s':>8} {'img/s':>8}"
    )
    for r in rows:
        c = r["config"]
        name = f"{c['model']}+{c['loss']} seed {c['seed']}"
        print(
            f"{name:<34} {r['selected_epoch']:>5} {100 * r['val_accuracy']:>8.3f} "
            f"{100 * r['test_accuracy']:>8.3f} {100 * r['test_ece']:>6.2f} "
            f"{r['test_mean_entropy']:>7.4f} {r['train_seconds']:>8.1f} "
            f"{r['images_per_second'] or 0:>8.0f}"
        )
    notes = {r["selection"] for r in rows} | {r["note"] for r in rows if r["note"]}
    for n in sorted(notes):
        print(f"  ({n})")


def summarize_seeds(accuracies: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation and 95% t-interval of test accuracies."""
    a = np.asarray(accuracies, np.float64)
    n = len(a)
    mean = float(a.mean())
    std = float(a.std(ddof=1)) if n > 1 else float("nan")
    if n > 1:
        try:
            from scipy.stats import t

            q = float(t.ppf(0.975, n - 1))
        except ImportError:  # normal approximation
            q = 1.959964
        half = q * std / math.sqrt(n)
    else:
        half = float("nan")
    return {"n": n, "mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half}


def report_seeds(config: TrainConfig, runs: list[dict]) -> dict[str, Any]:
    """Summarizes the runs of several seeds: writes `seeds.json`, prints the table."""
    summary = summarize_seeds([r["test_accuracy"] for r in runs])
    summary["test_ece_mean"] = float(np.mean([r["test_ece"] for r in runs]))
    summary["test_mean_entropy_mean"] = float(np.mean([r["test_mean_entropy"] for r in runs]))
    payload = {"summary": summary, "runs": [{k: r[k] for k in r if k != "history"} for r in runs]}
    write_json(os.path.join(config.output_dir, "seeds.json"), payload)
    print_summary(runs)
    print(
        f"test accuracy over {summary['n']} seeds: {100 * summary['mean']:.3f} "
        f"+- {100 * summary['std']:.3f} (95% CI {100 * summary['ci95_low']:.3f}"
        f"..{100 * summary['ci95_high']:.3f})"
    )
    return payload


def report_reproduction(config: TrainConfig, rows: list[dict]) -> None:
    """Prints ours next to the paper's accuracies and writes `reproduce.json`."""
    print()
    print(
        f"{'configuration':<20} {'paper %':>8} {'ours %':>8} {'std':>6} {'n':>3} "
        f"{'ECE %':>6} {'H nats':>7}"
    )
    for r in rows:
        print(
            f"{r['config']:<20} {r['paper']:>8.3f} {100 * r['mean']:>8.3f} "
            f"{100 * r['std'] if r['n'] > 1 else float('nan'):>6.3f} {r['n']:>3} "
            f"{100 * r['test_ece_mean']:>6.2f} {r['test_mean_entropy_mean']:>7.4f}"
        )
    print(f"  (paper: {OPTIMISTIC_NOTE}; ours: selection={config.selection})")
    if config.synthetic:
        print(f"  ({SYNTHETIC_NOTE})")
    write_json(os.path.join(config.output_dir, "reproduce.json"), rows)
