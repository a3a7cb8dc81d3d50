"""The configuration of a run: `DataOptions`, `RecipeOptions`, `TrainConfig` and their names.

Every field carries its command-line help (and choices) in its metadata:
`keras_minent.cli` generates the options of `train` and `reproduce` from
these fields, so a default or a choice is declared only here.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shlex
from typing import Any

import keras

from keras_minent import losses as losses_lib
from keras_minent import models
from keras_minent.errors import ConfigError
from keras_minent.models import PAPER_OUTPUTS

LOSSES = losses_lib.LOSS_NAMES
MODELS = models.BUILDERS
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
SELECTIONS = ("validation", "test")
LR_RULES = ("paper", "constant")
DISTRIBUTE_MODES = ("none", "gpus", "multiworker")
#: The classification heads: today's 26 letters, or the paper's 62 outputs (`head_labels`).
HEADS = ("letters", "paper")
VERBOSITIES = ("auto", 0, 1, 2)
SYNTHETIC_SIZE = 2600  # generated training images of --synthetic
SYNTHETIC_NOTE = "SYNTHETIC DATA: these numbers are meaningless (smoke test only)"
OPTIMISTIC_NOTE = "paper protocol: best TEST accuracy over epochs (optimistic, selected on test)"

#: The paper's reported accuracies (%), docs/method.md.
PAPER_RESULTS = {
    "vgg5/ce": 95.86,
    "spinal_vgg5/ce": 95.88,
    "vgg5/min_ent": 95.933,
    "vgg5/mix_ent": 95.927,
}


#: The options that set each argument of the loss classes (`TrainConfig.build_loss`).
LOSS_ARGUMENT_FLAGS = {
    "entropy_weight": "--reg-weight",
    "swapped_weight": "--reg-weight",
    "entropy_log_base": "--reg-log-base",
    "swapped_log_base": "--reg-log-base",
    "ce_weight": "--ce-weight",
    "ce_log_base": "--ce-log-base",
    "epsilon": "--epsilon",
    "label_smoothing": "--label-smoothing",
}


def loss_message(message: str) -> str:
    """A loss class's refusal in the words of the options that set the argument:
    "Argument `entropy_weight` must be >= 0 ... Received: entropy_weight=-1.0" ->
    "--reg-weight must be >= 0 ... Received: --reg-weight -1.0"."""
    for argument, flag in LOSS_ARGUMENT_FLAGS.items():
        message = message.replace(f"Argument `{argument}`", flag)
        message = re.sub(rf"\b{argument}=", f"{flag} ", message)
    return message


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


@dataclasses.dataclass
class TrainConfig(RecipeOptions):
    """Everything that defines a run. Defaults are the paper's recipe (docs/method.md).

    Each field's meaning is its help text (`dataclasses.fields(TrainConfig)`),
    also shown by `python -m keras_minent train --help`. With
    `distribute="multiworker"` the output directory must be shared by the
    machines (see `keras_minent.distribute`).

    Raises:
        ConfigError: On an invalid value, checked when the config is made
            (including the loss's hyperparameters).
    """

    loss: str = option("min_ent", "the loss", choices=LOSSES, group="loss")
    paper_loss_settings: bool = option(
        False,
        "use the paper's published weights and log bases for min_ent / mix_ent "
        "(--reg-weight, if given, overrides the paper's regularizer weight)",
        flag="--paper-settings",
        group="loss",
    )
    reg_weight: float | None = option(
        None,
        "weight of the entropy (min_ent) or swapped (mix_ent) term; none: the loss's default",
        type=float,
        group="loss",
    )
    ce_weight: float = option(1.0, "weight of the cross entropy term", group="loss")
    ce_log_base: float = option(math.e, "log base of the cross entropy term", group="loss")
    reg_log_base: float = option(math.e, "log base of the regularizer", group="loss")
    epsilon: float = option(1e-6, "mix_ent's epsilon", group="loss")
    label_smoothing: float = option(0.0, "label smoothing of the target", group="loss")
    head: str = option(
        "letters",
        "letters: one output per class (labels 0..25); paper: EMNIST-Letters with the "
        f"author's {PAPER_OUTPUTS} outputs, letter c trained as output c+1 (torchvision's "
        "ids 1..26), the softmax the paper's loss settings were tuned under",
        choices=HEADS,
        group="recipe",
    )
    epochs: int = option(200, "number of epochs (paper: 200)", group="recipe")
    seed: int = option(
        0, "seed of weights, data order, augmentation and the LR rule", group="recipe"
    )
    selection: str = option(
        "validation",
        "validation: honest (best validation accuracy); test: the paper's protocol (optimistic)",
        choices=SELECTIONS,
        group="recipe",
    )
    jit_compile: Any = option(
        "auto", "XLA: auto, on or off", flag="--xla", group="run", type=auto_or_bool
    )
    steps_per_execution: Any = option(
        "auto",
        "training steps per compiled call: auto (8 on GPU, 1 on CPU) or N",
        group="run",
        type=auto_or_int,
    )
    seed_parallel: Any = option(
        "auto",
        "several runs (--seeds, reproduce) train together as members of one program: "
        "auto (together only where a measurement shows a gain, RESULTS.md section 6: "
        "today one after another everywhere), on or off",
        group="run",
        type=auto_or_bool,
    )
    distribute: str = option(
        "none",
        "gpus: all local GPUs (MirroredStrategy / DataParallel); multiworker: several "
        "machines (TF_CONFIG on TensorFlow, KERAS_DISTRIBUTION_* on JAX; see README); "
        "--batch-size is the global batch",
        choices=DISTRIBUTE_MODES,
        group="run",
    )

    def __post_init__(self):
        checks = [
            (self.loss in LOSSES, f"--loss must be one of {LOSSES}"),
            (self.head in HEADS, f"--head must be one of {HEADS}"),
            (
                self.head != "paper" or self.dataset == "emnist_letters",
                f"--head paper is EMNIST-Letters' {PAPER_OUTPUTS}-output head (letters as "
                f"outputs 1..26); --dataset {self.dataset} keeps --head letters",
            ),
            (self.selection in SELECTIONS, "--selection must be validation or test"),
            (
                self.distribute in DISTRIBUTE_MODES,
                "--distribute must be none, gpus or multiworker",
            ),
            (self.jit_compile in ("auto", True, False), "--xla must be auto, on or off"),
            (
                self.seed_parallel in ("auto", True, False),
                "--seed-parallel must be auto, on or off",
            ),
            (
                self.steps_per_execution == "auto"
                or (isinstance(self.steps_per_execution, int) and self.steps_per_execution >= 1),
                "--steps-per-execution must be auto or an integer >= 1",
            ),
            (int(self.epochs) >= 1, f"--epochs must be >= 1 (got {self.epochs})"),
            (int(self.seed) >= 0, f"--seed must be >= 0 (got {self.seed})"),
            (self.synthetic_size >= 52, "--synthetic-size must be >= 52"),
            *self.recipe_checks(),
            *self.data_checks(),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"Invalid TrainConfig: {message}.")
        self._refuse_ignored_options()
        try:
            self.build_loss()  # validates the loss hyperparameters now, not after data loading
        except ConfigError:
            raise
        except ValueError as e:
            raise ConfigError(loss_message(str(e))) from e

    def _refuse_ignored_options(self) -> None:
        """Options that the configuration would ignore are refused, not dropped silently."""
        loss_options = {  # field: (its default, its flag)
            "reg_weight": (None, "--reg-weight"),
            "reg_log_base": (math.e, "--reg-log-base"),
            "ce_weight": (1.0, "--ce-weight"),
            "ce_log_base": (math.e, "--ce-log-base"),
            "paper_loss_settings": (False, "--paper-settings"),
        }
        changed = [flag for f, (d, flag) in loss_options.items() if getattr(self, f) != d]
        refusals = []
        if self.loss == "ce" and changed:
            refusals.append(
                f"loss 'ce' (plain cross entropy) has no regularizer and ignores "
                f"{', '.join(changed)}: use --loss min_ent or mix_ent, or drop them"
            )
        if self.loss != "mix_ent" and self.epsilon != 1e-6:
            refusals.append(f"--epsilon is mix_ent's; loss {self.loss!r} does not use it")
        if self.loss != "ce" and self.paper_loss_settings:
            fixed = [flag for flag in changed if flag not in ("--reg-weight", "--paper-settings")]
            if fixed:
                refusals.append(
                    f"--paper-settings fixes the log bases and the cross entropy weight; "
                    f"it would ignore {', '.join(fixed)} (only --reg-weight overrides it)"
                )
        if not self.synthetic and self.synthetic_size != SYNTHETIC_SIZE:
            refusals.append("--synthetic-size applies only with --synthetic")
        if self.synthetic and self.idx_dir is not None:
            refusals.append("--synthetic generates its data; it would ignore --idx-dir")
        if refusals:
            raise ConfigError(f"Invalid TrainConfig: {'; '.join(refusals)}.")

    def build_loss(self) -> keras.losses.Loss:
        """The configured loss (always `from_logits=True`: the models output logits).

        Built by `keras_minent.losses.get`. `"ce"` is `MinEntLoss(entropy_weight=0)`,
        which equals `keras.losses.CategoricalCrossentropy` exactly and takes
        integer labels (the configuration refuses regularizer options with it).
        With `paper_loss_settings` the paper's published weights and log bases
        are used, except the regularizer weight when `reg_weight` is given.
        """
        common: dict[str, Any] = {"from_logits": True, "label_smoothing": self.label_smoothing}
        if self.loss == "ce":
            return losses_lib.get("ce", **common)
        if self.loss == "mix_ent":
            common["epsilon"] = self.epsilon
        if self.paper_loss_settings:
            return losses_lib.get(self.loss, self.reg_weight, paper_settings=True, **common)
        return losses_lib.get(
            self.loss,
            self.reg_weight,
            reg_log_base=self.reg_log_base,
            ce_weight=self.ce_weight,
            ce_log_base=self.ce_log_base,
            **common,
        )


@dataclasses.dataclass
class EvaluateConfig(DataOptions):
    """What `evaluate` evaluates, on which data, and where its outputs go.

    Raises:
        ConfigError: On an invalid value.
    """

    checkpoint: str | None = option(
        None,
        "the model (required): a .keras file this package wrote, a paper .pt checkpoint, or "
        "paper:min_ent / paper:mix_ent / paper:ce (downloaded into DATA_DIR/paper_checkpoints "
        "and verified by its git blob id)",
        group="model",
        type=str,
        metavar="PATH",
    )

    def __post_init__(self):
        checks = [
            (bool(self.checkpoint), "--checkpoint is required (a .keras, a .pt or paper:NAME)"),
            (self.max_train_examples is None, "evaluate uses no training examples"),
            *self.data_checks(),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"Invalid EvaluateConfig: {message}.")
