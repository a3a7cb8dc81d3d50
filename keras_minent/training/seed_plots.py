"""The picture of several seeds: `seeds.png` (`train --seeds N`) and `reproduce.png`.

Per arm (a configuration), every seed's test accuracy is a dot, the mean a bar with
its 95% t-interval, and the paper's reported accuracy a marker where it applies; a
second panel shows the expected calibration error the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_minent import _plotting
from keras_minent.training.reporting import summarize_seeds


def arm(name: str, runs: Sequence[dict], paper: float | None = None) -> dict[str, Any]:
    """One arm of `plot_seeds`: its runs' test accuracies and ECEs (fractions), and the
    paper's accuracy (%) where it applies."""
    return {
        "name": name,
        "accuracies": [float(r["test_accuracy"]) for r in runs],
        "eces": [float(r["test_ece"]) for r in runs],
        "paper": paper,
    }


def plot_seeds(arms: Sequence[dict], path: str, title: str = "") -> None:
    """Writes the per-seed comparison of `arms` (made by `arm`) as a PNG.

    Args:
        arms: One entry per configuration, in the order to show.
        path: The PNG to write.
        title: The figure's title (the run's notes included).

    Raises:
        MissingExtraError: If matplotlib is not installed.
    """
    fig = _plotting.figure(max(8.0, 2.2 * len(arms) + 3.0), 5.0)
    axes = fig.subplots(1, 2)
    positions = np.arange(len(arms))
    panels = (
        (axes[0], "accuracies", "test accuracy %", True),
        (axes[1], "eces", "test ECE % (lower: better calibrated)", False),
    )
    for ax, key, label, with_paper in panels:
        for x, a in zip(positions, arms):
            values = 100 * np.asarray(a[key], np.float64)
            spread = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0.0]
            ax.plot(x + np.asarray(spread), values, "o", color="tab:blue", alpha=0.6, ms=5)
            s = summarize_seeds(list(values))
            ax.hlines(s["mean"], x - 0.25, x + 0.25, color="black", lw=2)
            if s["n"] > 1:
                low, high = s["ci95_low"], s["ci95_high"]
                ax.errorbar(
                    x + 0.3, s["mean"], yerr=[[s["mean"] - low], [high - s["mean"]]],
                    fmt="none", ecolor="black", capsize=4,
                )  # fmt: skip
            ax.annotate(
                f"{s['mean']:.2f}", (x - 0.25, s["mean"]), xytext=(-2, 0),
                textcoords="offset points", ha="right", va="center", fontsize=8,
            )  # fmt: skip
            if with_paper and a.get("paper") is not None:
                ax.plot(x, a["paper"], "D", color="tab:red", ms=7)
        ax.set_xticks(positions)
        ax.set_xticklabels([f"{a['name']}\n(n={len(a[key])})" for a in arms], fontsize=8)
        ax.set_xlim(-0.6, len(arms) - 0.4)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    handles = [
        axes[0].plot([], [], "o", color="tab:blue", alpha=0.6, label="one seed")[0],
        axes[0].plot([], [], "-", color="black", lw=2, label="mean (bar: 95% t-interval)")[0],
    ]
    if any(a.get("paper") is not None for a in arms):
        handles.append(
            axes[0].plot([], [], "D", color="tab:red", label="paper (best test epoch)")[0]
        )
    axes[0].legend(
        handles=handles,
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(0, -0.18),
        ncol=3 if len(arms) > 2 else 1,
    )
    fig.suptitle(_plotting.wrap(title, 110), fontsize=10)
    _plotting.save(fig, path)
