"""The option machinery and the options shared by every configuration: `option` (a
dataclass field with its command-line help), `command_line_options`, the parsers of
option texts, `DataOptions` (data and outputs) and `RecipeOptions` (how a network is
trained).

`keras_minent.cli` generates the command-line options from these fields' metadata.
Light by design: the command line imports it before parsing (no data pipeline,
tensorflow-datasets or plotting).
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from typing import Any

from keras_minent import models

MODELS = models.BUILDERS
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
LR_RULES = ("paper", "constant")
VERBOSITIES = ("auto", 0, 1, 2)
SYNTHETIC_SIZE = 2600  # generated training images of --synthetic


def auto_or_bool(text: str) -> bool | str:
    """Parses `auto`, `on`/`off` (or true/false, yes/no, 1/0)."""
    low = text.lower()
    if low == "auto":
        return "auto"
    if low in ("1", "true", "on", "yes"):
        return True
    if low in ("0", "false", "off", "no"):
        return False
    raise ValueError(f"expected auto/on/off, got {text!r}")


def auto_or_int(text: str) -> int | str:
    """Parses `auto` or an integer."""
    return "auto" if text == "auto" else int(text)


def limit(text: str) -> int | None:
    """Parses `none` or an integer >= 1 (`--max-train-examples`, `--max-eval-examples`)."""
    if text.lower() == "none":
        return None
    value = int(text)
    if value < 1:
        raise ValueError(f"expected an integer >= 1 or none, got {text!r}")
    return value


def option(default: Any, help: str, **metadata: Any) -> Any:
    """A dataclass field with its command-line help.

    Args:
        default: The default value.
        help: The help text of the command-line option.
        **metadata: `choices`, `group` (option group), `flag` (the option's
            name when it is not `--field-name`), `type` (the parser of the
            option's text), `metavar`.
    """
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


def command_line_options(config: Any, exclude: tuple[str, ...] = ()) -> list[str]:
    """The command-line options that set `config`'s fields where they differ from the
    defaults of its class (the options `keras_minent.cli` generates from the fields).

    Args:
        config: A `TrainConfig` (or another dataclass whose fields are `option`s).
        exclude: Fields left out (e.g. `output_dir`).

    Returns:
        The options and their values as separate words, quoted for a shell.

    Example:
    ```python
    command_line_options(TrainConfig(seed=3, augment=False))  # ['--no-augment', '--seed', '3']
    ```
    """
    words = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name in exclude or value == field.default:
            continue
        name = field.name.replace("_", "-")
        if isinstance(field.default, bool):  # a switch
            words.append(field.metadata.get("flag") or f"--{'no-' if field.default else ''}{name}")
            continue
        words.append(field.metadata.get("flag") or f"--{name}")
        for v in value if isinstance(value, tuple) else (value,):
            text = "none" if v is None else ("on" if v else "off") if isinstance(v, bool) else v
            words.append(shlex.quote(str(text)))
    return words


@dataclasses.dataclass
class DataOptions:
    """Where the data and the outputs of a run (or a search) are.

    Each field's meaning is its help text (`dataclasses.fields(DataOptions)`).
    """

    output_dir: str = option(
        "runs/emnist_letters", "where checkpoints and results go", group="run"
    )
    dataset: str = option(
        "emnist_letters",
        "the data: emnist_letters (the paper's), an existing path (a directory of IDX files, "
        "MNIST's or EMNIST's layout; a directory of images in class folders, train/ and test/ "
        "or the class folders directly; a .npz with x_train, y_train, x_test, y_test), "
        "else a tensorflow-datasets name (mnist, fashion_mnist, cifar10, emnist/balanced, ...)",
        group="data",
    )
    data_dir: str | None = option(
        None,
        "an existing directory where data are downloaded and prepared, for every backend "
        "(default: $KERAS_MINENT_DATA, else ~/keras_minent_datasets, created when needed)",
        group="data",
        type=str,
    )
    idx_dir: str | None = option(
        None,
        "directory with NIST's gzip.zip or the four emnist-letters-*.gz files",
        group="data",
        type=str,
    )
    download: bool = option(True, "download the dataset if it is missing", group="data")
    synthetic: bool = option(
        False,
        "generated images in EMNIST's format (smoke test; numbers meaningless)",
        group="data",
    )
    synthetic_size: int = option(
        SYNTHETIC_SIZE, "number of generated training images", group="data"
    )
    max_train_examples: int | None = option(
        None,
        "train on N examples only: the first N of a fixed permutation of the fit split "
        "(after the validation carve-out); for quick runs, numbers not comparable",
        group="data",
        type=limit,
        metavar="N",
    )
    max_eval_examples: int | None = option(
        None,
        "validate and test on N examples each (the first N of a fixed permutation)",
        group="data",
        type=limit,
        metavar="N",
    )
    verbose: Any = option(
        "auto", "Keras verbosity", choices=VERBOSITIES, group="run", type=auto_or_int
    )

    def data_checks(self) -> list[tuple[bool, str]]:
        """`(ok, message)` for each data option (the configurations refuse a failing one)."""

        def limit_ok(n) -> bool:
            return n is None or (isinstance(n, int) and not isinstance(n, bool) and n >= 1)

        emnist = self.dataset == "emnist_letters"
        return [
            (
                isinstance(self.dataset, str) and bool(self.dataset),
                "--dataset must be a name or path",
            ),
            (limit_ok(self.max_train_examples), "--max-train-examples must be none or >= 1"),
            (limit_ok(self.max_eval_examples), "--max-eval-examples must be none or >= 1"),
            (
                self.verbose in VERBOSITIES and not isinstance(self.verbose, bool),
                f"--verbose must be auto, 0, 1 or 2 (got {self.verbose!r})",
            ),
            (
                emnist or self.idx_dir is None,
                "--idx-dir is EMNIST-Letters' (--dataset emnist_letters)",
            ),
            (
                emnist or not self.synthetic,
                "--synthetic generates EMNIST-Letters; it would ignore --dataset",
            ),
        ]


@dataclasses.dataclass
class RecipeOptions(DataOptions):
    """How a network is trained (`keras_minent.training.recipe`), shared by `TrainConfig`
    and the search's `TuneConfig`: every trial of a search runs `train`'s recipe.

    Defaults are the paper's; each field's meaning is its help text.
    """

    model: str = option("vgg5", "the network", choices=tuple(MODELS), group="recipe")
    dropout: float = option(0.5, "dropout of the head (SpinalNet's script: 0.5)", group="recipe")
    augment: bool = option(
        True, "the recipe's rotation and perspective augmentation", group="recipe"
    )
    batch_size: int = option(100, "batch size (paper: 100)", group="recipe")
    learning_rate: float = option(0.005, "Adam's learning rate (paper: 0.005)", group="recipe")
    lr_rule: str = option(
        "paper",
        "paper: after an epoch without improvement the rate becomes learning_rate * u**3, "
        "u ~ U(0, 1); constant: no change",
        choices=LR_RULES,
        group="recipe",
    )
    precision: str = option(
        "auto",
        "dtype policy; auto: float32 on CPU and on GPU at batches below 1000 (measured: "
        "no gain at batch 100), else mixed_bfloat16 (compute capability >= 8.0) or "
        "mixed_float16",
        choices=PRECISIONS,
        group="run",
    )

    def recipe_checks(self) -> list[tuple[bool, str]]:
        """`(ok, message)` for each recipe option (the configurations refuse a failing one)."""
        return [
            (self.model in MODELS, f"--model must be one of {tuple(MODELS)}"),
            (self.precision in PRECISIONS, f"--precision must be one of {PRECISIONS}"),
            (self.lr_rule in LR_RULES, "--lr-rule must be paper or constant"),
            (int(self.batch_size) >= 1, f"--batch-size must be >= 1 (got {self.batch_size})"),
            (
                math.isfinite(self.learning_rate) and self.learning_rate > 0,
                f"--learning-rate must be a finite number > 0 (got {self.learning_rate})",
            ),
            (0.0 <= self.dropout < 1.0, f"--dropout must be in [0, 1) (got {self.dropout})"),
        ]
