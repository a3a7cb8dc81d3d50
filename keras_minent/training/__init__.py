"""The main job: train VGG-5 (or Spinal-VGG-5) on EMNIST-Letters with the paper's recipe
(or on another image-classification dataset: `TrainConfig.dataset`).

`train(TrainConfig(...))` does one run; `train_seeds` several; `reproduce` the
paper's table. Every run writes to its output directory:

* `checkpoint.keras` + `state.json` after every epoch: a run started again
  with the same directory continues from the last finished epoch
  (`state.json` is the commit point: it names the epoch-stamped checkpoint it
  goes with and records the configuration and the data's fingerprint, so a
  resume that does not match is refused);
* `best.keras`: the model of the selected epoch (loads after `import keras_minent`);
* `results.json`, `curves.png` and TensorBoard logs (`logs/`).

Selection is honest by default: the epoch with the best validation accuracy
(a split carved from the training images) is chosen and its test accuracy
reported. `selection="test"` reproduces the paper's protocol (best test
accuracy over epochs), which is optimistic and labelled so everywhere.

Modules: `options` (the option machinery, `DataOptions`, `RecipeOptions`), `config`
(what defines a run), `recipe` (the network, its compilation, callbacks and fit: what
`train`, joint runs and search trials share), `devices` (accelerator, precision,
distribution), `lr_rule` (the paper's learning-rate rule), `callbacks` (run state),
`reporting` (results, plots, tables), `run` (`train`), `seeds` (`train_seeds`,
`reproduce`), `joint` (several runs as one program), `joint_run` (training them
together), `joint_state` (their joint commit point), `seed_plots` (`seeds.png`,
`reproduce.png`), `evaluation` (`evaluate`: a model file or the paper's checkpoint on
the test split).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: The modules of the public names, lightest first: a name is imported on first use
#: (PEP 562) from the first of them that has it, so that `keras_minent.training.config`
#: (what the command line builds its options from) imports without the data pipeline,
#: tensorflow-datasets or plotting. The imports below are for type checkers and docs.
_MODULES = (
    "keras_minent.training.options",
    "keras_minent.training.config",
    "keras_minent.training.files",
    "keras_minent.training.lr_rule",
    "keras_minent.training.callbacks",
    "keras_minent.training.devices",
    "keras_minent.training.reporting",
    "keras_minent.training.recipe",
    "keras_minent.training.run",
    "keras_minent.training.evaluation",
    "keras_minent.training.seeds",
    "keras_minent.datasets.selection",
)

if TYPE_CHECKING:
    from keras_minent.datasets.selection import load_data
    from keras_minent.training.callbacks import RunState, get_seed_states, set_seed_states
    from keras_minent.training.config import (
        LOSSES,
        OPTIMISTIC_NOTE,
        PAPER_RESULTS,
        SYNTHETIC_NOTE,
        ConfigError,
        EvaluateConfig,
        TrainConfig,
    )
    from keras_minent.training.devices import accelerator, resolve_precision, versions
    from keras_minent.training.evaluation import evaluate
    from keras_minent.training.files import NonFiniteLossError, OutputError, ResumeError, RunError
    from keras_minent.training.lr_rule import PaperLearningRateRule
    from keras_minent.training.options import MODELS, PRECISIONS, DataOptions, RecipeOptions
    from keras_minent.training.recipe import Recipe, build_model, build_recipe
    from keras_minent.training.reporting import plot_curves, print_summary, summarize_seeds
    from keras_minent.training.run import train
    from keras_minent.training.seeds import reproduce, train_seeds

__all__ = [
    "LOSSES",
    "MODELS",
    "OPTIMISTIC_NOTE",
    "PAPER_RESULTS",
    "PRECISIONS",
    "SYNTHETIC_NOTE",
    "ConfigError",
    "DataOptions",
    "EvaluateConfig",
    "NonFiniteLossError",
    "OutputError",
    "ResumeError",
    "RunError",
    "PaperLearningRateRule",
    "Recipe",
    "RecipeOptions",
    "RunState",
    "TrainConfig",
    "accelerator",
    "build_model",
    "build_recipe",
    "evaluate",
    "get_seed_states",
    "load_data",
    "plot_curves",
    "print_summary",
    "reproduce",
    "resolve_precision",
    "set_seed_states",
    "summarize_seeds",
    "train",
    "train_seeds",
    "versions",
]


def __getattr__(name: str):
    if name in __all__:
        for module in _MODULES:
            value = getattr(importlib.import_module(module), name, _MODULES)
            if value is not _MODULES:
                globals()[name] = value
                return value
    # Not a public name: a submodule (`from keras_minent.training import joint`) is imported.
    raise AttributeError(f"module 'keras_minent.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
