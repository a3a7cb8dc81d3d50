"""Figures without pyplot: the user's plotting backend is never touched.

Every plot of the package is drawn on a `matplotlib.figure.Figure` made here and
saved to a file; `pyplot` (and with it the process-wide backend) is not used, so a
notebook's `plt.show()` keeps working after a training run.
"""

from __future__ import annotations

import textwrap
from typing import Any

EXTRA_HINT = 'pip install "keras-minent[plots]"'


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message names the extra that installs it."""


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


def figure(width: float, height: float, **kwargs: Any):
    """A new `matplotlib.figure.Figure` (no pyplot, no global backend change)."""
    require("matplotlib", "plots", "Plots")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), **kwargs)


def save(fig, path: str) -> None:
    """Saves `fig` as a PNG (Agg canvas of the figure itself)."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def wrap(text: str, width: int = 60) -> str:
    """Wraps each line of a title to `width` characters."""
    return "\n".join(textwrap.fill(line, width) for line in text.splitlines())
