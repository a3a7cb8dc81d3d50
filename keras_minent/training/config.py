"""The configuration of a run: `TrainConfig`, `EvaluateConfig` and their names.

Every field carries its command-line help (and choices) in its metadata:
`keras_minent.cli` generates the options of `train` and `reproduce` from
these fields, so a default or a choice is declared only here. The option
machinery and the shared `DataOptions` / `RecipeOptions` are in
`keras_minent.training.options` (importable from here too).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import keras

from keras_minent import losses as losses_lib
from keras_minent.errors import ConfigError
from keras_minent.models import PAPER_OUTPUTS
from keras_minent.training.options import (
    LR_RULES,
    MODELS,
    PRECISIONS,
    SYNTHETIC_SIZE,
    VERBOSITIES,
    DataOptions,
    RecipeOptions,
    auto_or_bool,
    auto_or_int,
    command_line_options,
    limit,
    option,
)

__all__ = [
    "DISTRIBUTE_MODES",
    "HEADS",
    "LOSSES",
    "LOSS_ARGUMENT_FLAGS",
    "LR_RULES",
    "MODELS",
    "OPTIMISTIC_NOTE",
    "PAPER_RESULTS",
    "PRECISIONS",
    "SELECTIONS",
    "SYNTHETIC_NOTE",
    "SYNTHETIC_SIZE",
    "VERBOSITIES",
    "ConfigError",
    "DataOptions",
    "EvaluateConfig",
    "RecipeOptions",
    "TrainConfig",
    "auto_or_bool",
    "auto_or_int",
    "command_line_options",
    "limit",
    "loss_message",
    "option",
]

LOSSES = losses_lib.LOSS_NAMES
SELECTIONS = ("validation", "test")
DISTRIBUTE_MODES = ("none", "gpus", "multiworker")
#: The classification heads: today's 26 letters, or the paper's 62 outputs (`head_labels`).
HEADS = ("letters", "paper")
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
