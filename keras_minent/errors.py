"""The package's expected errors: one base class, `KerasMinentError`.

Every error the package raises for a reason the user can fix (an invalid
option, missing or corrupt data, an output directory that cannot be used, a
missing optional part) derives from `KerasMinentError`; the command line prints
such an error as one line, `keras-minent: error: <message>`, and exits with
status 2 (a lost peer of a multi-worker job: 75, so the job can be restarted).
Any other exception is a bug and keeps its traceback.

Each class keeps the built-in base it always had (`ValueError`,
`RuntimeError`, `ImportError`), so code catching that still catches it. The
classes are also importable from the modules that raise them (e.g.
`keras_minent.training.ConfigError`, `keras_minent.datasets.DataError`).

This module imports nothing: the command line imports it before Keras.

Example:

```python
from keras_minent.errors import KerasMinentError

try:
    keras_minent.training.train(config)
except KerasMinentError as e:
    print(f"not trained: {e}")
```
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "EmnistDataError",
    "KerasMinentError",
    "MissingExtraError",
    "NonFiniteLossError",
    "OutputError",
    "PaperCheckpointError",
    "PeerLostError",
    "ResumeError",
    "RunError",
    "SearchFailedError",
    "SearchStateError",
    "UnsupportedKerasError",
]


class KerasMinentError(Exception):
    """An expected error: its message says in one line what is wrong and what to do."""


class ConfigError(KerasMinentError, ValueError):
    """An invalid configuration (or an output directory holding another one)."""


class MissingExtraError(KerasMinentError, ImportError):
    """An optional dependency is missing; the message names the extra that installs it."""


class UnsupportedKerasError(KerasMinentError, RuntimeError):
    """The installed Keras's TensorFlow trainer is not the one the correction expects."""


class DataError(KerasMinentError, ValueError):
    """A dataset that is missing, corrupt or inconsistent (the message names the file)."""


class EmnistDataError(DataError):
    """EMNIST files that are missing, corrupt or inconsistent."""


class PaperCheckpointError(DataError):
    """A file that is not one of the paper's checkpoints, or one that cannot be read safely."""


class RunError(KerasMinentError):
    """A run stopped for a reason the command line reports in one line (exit status 2)."""


class ResumeError(RunError):
    """An output directory whose files do not agree (or do not belong to this run)."""


class NonFiniteLossError(RunError):
    """Training produced a non-finite loss; the last good epoch stays committed."""


class OutputError(RunError):
    """An output file could not be written (permission, not a directory, no space)."""


class SearchStateError(ResumeError):
    """A search directory whose files are corrupt, incomplete or of another search."""


class SearchFailedError(KerasMinentError, RuntimeError):
    """Trials of a search failed (keras-tuner printed why)."""


class PeerLostError(KerasMinentError, RuntimeError):
    """A worker of a multi-worker job failed or became unreachable (exit status 75)."""
