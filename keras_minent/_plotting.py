"""Optional parts, and figures without pyplot.

`require` imports an optional dependency or raises `MissingExtraError` naming the
`pip install "keras-minent[...]"` that fixes it (the command line prints that one
line and exits with status 2); `backend_missing` does the same for Keras's backend.

Every plot of the package is drawn on a `matplotlib.figure.Figure` made here and
saved to a file; `pyplot` (and with it the process-wide backend) is not used, so a
notebook's `plt.show()` keeps working after a training run.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

from keras_minent._atomic import atomic_save
from keras_minent.errors import MissingExtraError


def require(module: str, extra: str, purpose: str) -> Any:
    """Imports `module`, or raises `MissingExtraError` naming the extra to install.

    Args:
        module: The module to import (e.g. `"matplotlib"`).
        extra: The keras-minent extra that installs it (e.g. `"plots"`).
        purpose: What needs it, for the message (e.g. `"plots"`).

    Returns:
        The imported module.

    Raises:
        MissingExtraError: If it cannot be imported.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"{purpose} need{'s' if not purpose.endswith('s') else ''} {module.split('.')[0]}, "
            f'which is not installed: pip install "keras-minent[{extra}]"'
        ) from e


#: The extra that installs each Keras backend.
BACKEND_EXTRAS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


#: The extra that installs each optional module the package imports where it is used.
OPTIONAL_EXTRAS = {
    "tensorflow": "tensorflow",
    "tensorflow_datasets": "data",
    "keras_tuner": "tuning",
    "tensorboard": "tuning",
    "sklearn": "tuning",
    "scipy": "tuning",
    "matplotlib": "plots",
    "PIL": "images",
}


def optional_missing(error: ImportError) -> MissingExtraError | None:
    """The `MissingExtraError` for an import of an optional module (`OPTIONAL_EXTRAS`)
    that failed because it is not installed; None for any other error."""
    root = (getattr(error, "name", None) or "").split(".")[0]
    if root not in OPTIONAL_EXTRAS:
        return None
    return MissingExtraError(
        f'This needs {root}, which is not installed: pip install "keras-minent[{OPTIONAL_EXTRAS[root]}]"'
    )


def backend_missing(error: ImportError) -> MissingExtraError | None:
    """The `MissingExtraError` for an `import keras` that failed because Keras's
    backend (`KERAS_BACKEND`, TensorFlow by default) is not installed; None if
    `error` is something else."""
    import os

    root = (getattr(error, "name", None) or "").split(".")[0]
    if root not in BACKEND_EXTRAS:
        return None
    chosen = os.environ.get("KERAS_BACKEND")
    which = f"KERAS_BACKEND={chosen}" if chosen else "Keras's default backend"
    others = " or ".join(f"KERAS_BACKEND={b}" for b in BACKEND_EXTRAS if b != root)
    return MissingExtraError(
        f"{which} needs {root}, which is not installed: "
        f'pip install "keras-minent[{BACKEND_EXTRAS[root]}]" (or use {others})'
    )


def figure(width: float, height: float, **kwargs: Any):
    """A new `matplotlib.figure.Figure` (no pyplot, no global backend change)."""
    require("matplotlib", "plots", "Plots")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), **kwargs)


def save(fig, path: str) -> None:
    """Saves `fig` as a PNG (Agg canvas of the figure itself), atomically (`_atomic`)."""
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))


def wrap(text: str, width: int = 60) -> str:
    """Wraps each line of a title to `width` characters."""
    return "\n".join(textwrap.fill(line, width) for line in text.splitlines())


def plain_log_labels(axis, counts: bool = False) -> None:
    """Plain numbers on a logarithmic axis (0.005, 2, 1,000), not "5x10^-3" or "2x10^0":
    the powers of 10, and 2 and 5 times them while the axis spans at most two decades.

    Args:
        axis: A matplotlib axis (`ax.yaxis`) with a logarithmic scale.
        counts: Whole numbers from 1 up (1,000 not 1000; nothing below 1).
    """
    from matplotlib.ticker import FuncFormatter

    def text(v: float) -> str:
        if counts:
            return f"{v:,.0f}" if v >= 1 else ""
        return f"{v:g}"

    def minor(v: float, _) -> str:
        low, high = axis.get_view_interval()
        if v <= 0 or high > 100 * max(low, 1e-300):
            return ""
        lead = round(v / 10 ** math.floor(math.log10(v)))
        return text(v) if lead in (2, 5) else ""

    axis.set_major_formatter(FuncFormatter(lambda v, _: text(v)))
    axis.set_minor_formatter(FuncFormatter(minor))
