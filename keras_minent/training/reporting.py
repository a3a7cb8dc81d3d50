"""What a run reports: `results.json`, plots, console tables and seed statistics."""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from typing import Any

import keras
import numpy as np

from keras_minent import _plotting, calibration, models
from keras_minent.training.callbacks import RunState
from keras_minent.training.config import OPTIMISTIC_NOTE, SYNTHETIC_NOTE, TrainConfig
from keras_minent.training.devices import precision_choice, versions
from keras_minent.training.files import save_model, write_json


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
    data_record: dict[str, Any] | None = None  # the `data` entry (`DataRecord.to_json`)
    seed_parallel: dict[str, Any] | None = None  # `joint.seed_parallel_choice` of a joint run


def note(config: TrainConfig, data: dict | None = None) -> str | None:
    """The warning every output of the run carries, or None: synthetic or unverified
    EMNIST-Letters, and examples left out by `--max-train-examples` / `--max-eval-examples`."""
    notes = []
    if config.synthetic:
        notes.append(SYNTHETIC_NOTE)
    elif data is not None and data.get("verified") is False:
        notes.append(f"UNVERIFIED DATA: {data.get('description') or data.get('source')}")
    subset = subset_note(config, (data or {}).get("limits"))
    if subset:
        notes.append(subset)
    return "; ".join(notes) or None


def subset_note(config: TrainConfig, limits: dict | None = None) -> str | None:
    """The note of a run on part of its data (`--max-train-examples`, `--max-eval-examples`);
    None where no limit left an example out (a limit at or above a split's size)."""
    before = (limits or {}).get("examples_before_limits", {})
    parts = []
    for flag, n, roles in (
        ("--max-train-examples", config.max_train_examples, ("fit",)),
        ("--max-eval-examples", config.max_eval_examples, ("val", "test")),
    ):
        if n is None:
            continue
        sizes = [before[r] for r in roles if r in before]
        if sizes and all(size <= n for size in sizes):
            continue  # nothing left out
        of = "/".join(map(str, sizes))
        parts.append(f"{flag} {n}" + (f" (of {of})" if of else ""))
    if not parts:
        return None
    return "SUBSET OF THE DATA: " + ", ".join(parts) + ": not comparable with full-data numbers"


def report_run(run: FinishedRun) -> dict[str, Any]:
    """Evaluates the selected model, writes `inference.keras`, `results.json`, then the
    plots (a plot that fails is a warning, never a lost run), prints the summary."""
    from keras_minent import datasets

    config, state, out = run.config, run.state, run.config.output_dir
    x_fit = run.data["fit"][0]
    x_val, _ = val = run.data["val"]
    x_test, y_test = test = run.data["test"]
    best = state.load_best()  # the committed best model, or a ResumeError naming it
    save_model(models.inference_model(best), os.path.join(out, "inference.keras"))
    test_loss, test_acc = best.evaluate(
        datasets.evaluation_dataset(x_test, y_test, 1000), verbose=0, return_dict=False
    )[:2]
    title = _title(config, run.data_record)
    test_logits = np.asarray(best.predict(x_test, batch_size=1000, verbose=0), np.float64)
    cal = _calibration_report(best, test_logits, val, test, out, config.selection)
    hist = state.history
    epochs_run = len(state.epoch_times)
    train_time = float(sum(state.epoch_times))
    results = {
        "note": note(config, run.data_record),
        "data": run.data_record,
        "selection": (
            OPTIMISTIC_NOTE
            if config.selection == "test"
            else "best validation accuracy (validation split carved from training)"
        ),
        "selected_epoch": state.best_epoch + 1,
        "val_accuracy": hist["val_accuracy"][state.best_epoch],
        "test_accuracy": float(test_acc),
        "test_loss": float(test_loss),
        "head": head_entry(config, int(best.output_shape[-1])),
        **cal,
        "epochs": epochs_run,
        "train_seconds": train_time,
        "wall_seconds_this_session": run.wall_seconds,
        "images_per_second": epochs_run * len(x_fit) / train_time if train_time else None,
        "num_examples": {"fit": len(x_fit), "val": len(x_val), "test": len(x_test)},
        "precision": run.precision,
        "precision_choice": precision_choice(config.precision, run.device, config.batch_size),
        "device": run.device,
        "seed_parallel": run.seed_parallel,
        "versions": versions(),
        "config": dataclasses.asdict(config),
        "loss_config": keras.losses.serialize(config.build_loss()),
        "history": hist,
    }
    write_json(os.path.join(out, "results.json"), results)  # before any plot
    plot_safely(
        "curves.png",
        plot_curves,
        hist,
        os.path.join(out, "curves.png"),
        title=title,
        selected_epoch=state.best_epoch + 1,
    )
    plot_calibration(test_logits, y_test, out, title)
    print_summary([results])
    return results


def plot_safely(name: str, plot, *args, **kwargs) -> None:
    """Draws one plot; any failure (no matplotlib, a bug) is a warning: the results stand."""
    try:
        plot(*args, **kwargs)
    except Exception as e:  # a plot never loses a run
        warnings.warn(f"{name} not written: {e}", RuntimeWarning, stacklevel=2)


def plot_calibration(logits, labels, out: str, title: str) -> None:
    """`reliability.png` and `entropy_histogram.png` of test logits in `out` (a plot
    that fails is a warning, as `plot_safely`)."""
    plot_safely(
        "reliability.png",
        calibration.plot_reliability,
        logits,
        labels,
        os.path.join(out, "reliability.png"),
        title=title,
    )
    plot_safely(
        "entropy_histogram.png",
        calibration.plot_entropy_histogram,
        logits,
        os.path.join(out, "entropy_histogram.png"),
        title=title,
    )


def _calibration_report(best, test_logits, val, test, out: str, selection: str) -> dict:
    """Test-set ECE and entropy, and temperature scaling fitted on the "val" role's split
    (the validation carve-out; the test split itself under the paper's `selection="test"`,
    which `temperature_fitted_on` says)."""
    calibrated, report = calibration.calibrate(best, *val)
    save_model(calibrated, os.path.join(out, "best_calibrated.keras"))
    t = report["temperature"]
    return {
        "test_ece": calibration.ece(test_logits, test[1])[0],
        "test_mean_entropy": float(calibration.entropies(test_logits).mean()),
        "temperature": t,
        "temperature_fitted_on": (
            "validation"
            if selection == "validation"
            else "test (selection=test has no validation split: optimistic)"
        ),
        "test_ece_after_temperature": calibration.ece(test_logits / t, test[1])[0],
        "test_nll": calibration.nll(test_logits, test[1]),
        "test_nll_after_temperature": calibration.nll(test_logits, test[1], t),
    }


def head_entry(config: TrainConfig, outputs: int) -> dict[str, Any]:
    """The `head` entry of `results.json`: which head, its outputs, what the labels are."""
    if config.head == "paper":
        targets = (
            "letter c is output c+1 (torchvision's ids 1..26; outputs 0 and 27.. never a "
            "target): accuracy, ECE, entropy and NLL are over all outputs, as the author's"
        )
    else:
        targets = "class c is output c"
    return {"name": config.head, "outputs": outputs, "targets": targets}


def _title(config: TrainConfig, data: dict | None = None) -> str:
    title = f"{config.model} + {config.loss} (seed {config.seed})"
    if config.head == "paper":
        title += ", 62-output paper head"
    if config.dataset != "emnist_letters":
        title = f"{title} on {config.dataset}"
    return f"{title}\n{note(config, data)}" if note(config, data) else title


def plot_curves(
    history: dict, path: str, title: str = "", selected_epoch: int | None = None
) -> None:
    """Writes loss, accuracy and learning-rate curves per epoch as a PNG.

    Every epoch is a marker (one epoch is a readable point), the epoch axis has
    integer ticks, and `selected_epoch` (1-based) is marked by a vertical line.
    Drawn on a `matplotlib.figure.Figure`: the process's plotting backend is untouched.

    Raises:
        MissingExtraError: If matplotlib is not installed.
    """
    fig = _plotting.figure(14, 4.3)  # MissingExtraError first, without matplotlib
    from matplotlib.ticker import MaxNLocator

    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    style = "o-" if len(epochs) <= 60 else "-"  # a marker per epoch while they stay apart
    axes = fig.subplots(1, 3)
    panels = (
        (axes[0], "loss", (("loss", "train"), ("val_loss", "validation"))),
        (axes[1], "accuracy", (("accuracy", "train"), ("val_accuracy", "validation"))),
        (axes[2], "learning rate", (("learning_rate", None),)),
    )
    for ax, name, series in panels:
        for key, label in series:
            if key in history:
                ax.plot(epochs, history[key], style, ms=4, label=label)
        if name == "learning rate" and "learning_rate" in history:
            ax.set_yscale("log")
            _plotting.plain_log_labels(ax.yaxis)
        if selected_epoch is not None:  # named in the legend: a label by the line hit it
            ax.axvline(
                selected_epoch,
                color="tab:green",
                ls="--",
                lw=1,
                label=f"selected: epoch {selected_epoch}",
            )
        ax.set(title=name, xlabel="epoch")
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
            ax.set_xlim(0.5, len(epochs) + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(_plotting.wrap(title, 120), fontsize=10)
    _plotting.save(fig, path)


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


#: Student's t quantile t(0.975, df) for df = 1..30 (standard tables).
_T975 = (
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
    2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
    2.109816, 2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
    2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    """t(0.975, df): the table above, then a Cornish-Fisher expansion (error < 1e-4)."""
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def summarize_seeds(accuracies: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation and 95% t-interval of test accuracies."""
    a = np.asarray(accuracies, np.float64)
    n = len(a)
    mean = float(a.mean())
    std = float(a.std(ddof=1)) if n > 1 else float("nan")
    half = t_quantile_975(n - 1) * std / math.sqrt(n) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half}


def report_seeds(
    config: TrainConfig, runs: list[dict], failed: dict[str, str] | None = None
) -> dict[str, Any]:
    """Summarizes the runs of several seeds: writes `seeds.json`, prints the table.

    `failed` (`{run: why}`) are runs that stopped; they are listed, not summarized.
    """
    summary = summarize_seeds([r["test_accuracy"] for r in runs])
    summary["test_ece_mean"] = float(np.mean([r["test_ece"] for r in runs]))
    summary["test_mean_entropy_mean"] = float(np.mean([r["test_mean_entropy"] for r in runs]))
    payload = {"summary": summary, "runs": [{k: r[k] for k in r if k != "history"} for r in runs]}
    if failed:
        payload["failed"] = failed
    write_json(os.path.join(config.output_dir, "seeds.json"), payload)
    if len(runs) > 1:  # each run printed its own row; one run's would be printed twice
        print_summary(runs)
    print(f"test accuracy over {seeds_line(summary)}")
    return payload


def seeds_line(summary: dict[str, float]) -> str:
    """The printed summary of `summarize_seeds`, in %: one run has no interval, and an
    interval wider than accuracy's range (two or three seeds) is shown clipped to
    0..100 and says so."""
    n, mean = summary["n"], 100 * summary["mean"]
    if n == 1:
        return f"1 seed: {mean:.3f} (one run: no interval)"
    low, high = 100 * summary["ci95_low"], 100 * summary["ci95_high"]
    text = f"{n} seeds: {mean:.3f} +- {100 * summary['std']:.3f} (95% CI "
    if low >= 0 and high <= 100:
        return text + f"{low:.3f}..{high:.3f})"
    return (
        text + f"{max(low, 0.0):.3f}..{min(high, 100.0):.3f}, clipped to 0..100: the "
        f"t-interval of {n} seeds, {low:.3f}..{high:.3f}, is wider than accuracy's range; "
        "more seeds narrow it)"
    )


def report_reproduction(config: TrainConfig, rows: list[dict]) -> None:
    """Prints ours next to the paper's accuracies (on EMNIST-Letters; "-" on other
    data) and writes `reproduce.json`."""
    print()
    print(
        f"{'configuration':<20} {'paper %':>8} {'ours %':>8} {'std':>6} {'n':>3} "
        f"{'ECE %':>6} {'H nats':>7}"
    )
    for r in rows:
        paper = "-" if r["paper"] is None else f"{r['paper']:.3f}"
        std = f"{100 * r['std']:.3f}" if r["n"] > 1 else "-"  # one run: no spread
        print(
            f"{r['config']:<20} {paper:>8} {100 * r['mean']:>8.3f} "
            f"{std:>6} {r['n']:>3} "
            f"{100 * r['test_ece_mean']:>6.2f} {r['test_mean_entropy_mean']:>7.4f}"
        )
    if config.dataset == "emnist_letters":
        print(f"  (paper: {OPTIMISTIC_NOTE}; ours: selection={config.selection})")
    else:
        print(
            f"  (dataset {config.dataset}: the paper's numbers are for EMNIST-Letters only; "
            f"selection={config.selection})"
        )
    if note(config):
        print(f"  ({note(config)})")
    write_json(os.path.join(config.output_dir, "reproduce.json"), rows)
