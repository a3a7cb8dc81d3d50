"""Command line: `python -m keras_minent train|reproduce|tune|evaluate` (also `keras-minent ...`).

The options are generated from the fields of `TrainConfig` (and
`TuneConfig`): their defaults, choices and help texts are declared once, in
the configuration's field metadata (`keras_minent.training.options.option`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sys
from typing import Any

from keras_minent.errors import KerasMinentError, PeerLostError

PAPER_RECIPE = "Adam 0.005, batch 100, 200 epochs, augmentation, dropout 0.5, paper LR rule"
TRAIN_GROUPS = {
    "loss": "loss",
    "recipe": "recipe (defaults: the paper's: " + PAPER_RECIPE + ")",
    "run": "run",
    "data": "data",
}
TUNE_GROUPS = {
    "search": "search",
    "recipe": "recipe of every trial (train's; defaults: the paper's)",
    "run": "run",
    "data": "data",
}
EVALUATE_GROUPS = {"model": "model", "run": "run", "data": "data"}
#: What `reproduce` sets itself for each of the paper's configurations (not its options).
REPRODUCE_FIXED = (
    "loss",
    "model",
    "paper_loss_settings",
    "reg_weight",
    "ce_weight",
    "ce_log_base",
    "reg_log_base",
    "epsilon",
)


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    if isinstance(value, float) and value == math.e:
        return "e"
    return str(value)


class Parser(argparse.ArgumentParser):
    """argparse without abbreviations (`--epoch 1` is an error, not `--epochs 1`);
    subcommands' parsers are of this class too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def error_message(error: Exception) -> str:
    """An error's message as the command line prints it: the options the user typed,
    without the configuration class's prefix ("Invalid TrainConfig: ")."""
    return re.sub(r"^Invalid \w+Config: ", "", str(error))


def _typed(parse):
    """`parse` with argparse's message on a ValueError."""

    def typed(text: str):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    typed.__name__ = parse.__name__
    return typed


def add_options(
    parser: argparse.ArgumentParser,
    cls: type,
    groups: dict[str, str],
    exclude: tuple[str, ...] = (),
    **defaults: Any,
) -> dict[str, Any]:
    """Adds one option per field of the dataclass `cls` (see `options_to_config`).

    A field's metadata gives its help text, `choices`, `group`, `flag` (the
    option's name when it is not `--field-name`) and `type`. A boolean field
    that defaults to False is a switch (`--synthetic`); one that defaults to
    True is turned off by `--no-field-name`. A tuple takes one or more values.

    Args:
        parser: The (sub)command's parser.
        cls: A dataclass whose fields all have a default.
        groups: Option group titles by the `group` names of the metadata.
        exclude: Fields that get no option (the command sets them itself).
        **defaults: Defaults that differ from the field's, by field name.

    Returns:
        The option groups by name.
    """
    sections = {name: parser.add_argument_group(title) for name, title in groups.items()}
    for field in dataclasses.fields(cls):
        if field.name in exclude:
            continue
        meta = field.metadata
        default = defaults.get(field.name, field.default)
        group = sections[meta["group"]]
        name = field.name.replace("_", "-")
        text = meta["help"]
        if isinstance(default, bool):
            flag = meta.get("flag") or (f"--no-{name}" if default else f"--{name}")
            action = "store_false" if default else "store_true"
            shown = f"turn off: {text} (default: on)" if default else f"{text} (default: off)"
            group.add_argument(flag, dest=field.name, action=action, help=shown.replace("%", "%%"))
            continue
        kwargs: dict[str, Any] = {
            "dest": field.name,
            "default": default,
            "help": f"{text} (default: {_shown(default)})".replace("%", "%%"),
            "choices": meta.get("choices"),
        }
        if isinstance(default, tuple):
            kwargs["nargs"] = "+"
            kwargs["type"] = str
        else:
            kwargs["type"] = _typed(meta.get("type") or type(default))
        flag = meta.get("flag") or f"--{name}"
        if not kwargs["choices"]:
            kwargs["metavar"] = meta.get("metavar") or flag[2:].upper().replace("-", "_")
        group.add_argument(flag, **kwargs)
    return sections


def options_to_config(cls: type, args: argparse.Namespace) -> Any:
    """The `cls` instance of the parsed options made by `add_options` (a field
    without an option keeps its default)."""
    values = {}
    for field in dataclasses.fields(cls):
        value = getattr(args, field.name, field.default)
        values[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _seeds_option(group) -> None:
    group.add_argument(
        "--seeds",
        type=_positive_int,
        default=1,
        help="run this many seeds (seed, seed+1, ...) and report mean/std/95%% CI (default: 1)",
    )


def build_parser(with_tune: bool = True) -> argparse.ArgumentParser:
    """The command line's parser.

    Args:
        with_tune: Whether `tune` gets its options, which imports the tuning
            modules (keras-tuner, scikit-learn); without them `tune` is only
            listed. `main` builds them only to run or describe `tune`.
    """
    import keras_minent
    from keras_minent.training.config import TrainConfig

    parser = Parser(
        prog="keras-minent",
        description="Train VGG-5 with MIN-ENT / MIX-ENT on EMNIST-Letters (the paper's recipe) "
        "or another image-classification dataset (--dataset).",
    )
    parser.add_argument(
        "--version", action="version", version=f"keras-minent {keras_minent.__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train one configuration (resumes its output dir)")
    _seeds_option(
        add_options(train, TrainConfig, TRAIN_GROUPS, output_dir="runs/emnist_letters")["recipe"]
    )
    rep = sub.add_parser(
        "reproduce",
        help="the paper's table: 4 configurations",
        description="Trains VGG-5 + CE, Spinal-VGG-5 + CE, VGG-5 + MIN-ENT and VGG-5 + "
        "MIX-ENT (the last two with the paper's published loss settings): the loss and "
        "model options are set by the command.",
    )
    groups = add_options(
        rep, TrainConfig, TRAIN_GROUPS, exclude=REPRODUCE_FIXED, output_dir="runs/reproduce"
    )
    _seeds_option(groups["recipe"])
    help_ = "KerasTuner search of the regularizer weight (resumable)"
    tune_config = None
    if with_tune:
        try:
            from keras_minent.tuning import TuneConfig as tune_config
        except ImportError:  # no keras-tuner: `tune` says so when it runs
            help_ += "; needs keras-tuner"
    if tune_config is None:
        tune = sub.add_parser("tune", help=help_)
        tune.add_argument("options", nargs=argparse.REMAINDER)
    else:
        add_options(sub.add_parser("tune", help=help_), tune_config, TUNE_GROUPS)
    from keras_minent.training.config import EvaluateConfig

    evaluate = sub.add_parser(
        "evaluate",
        help="test accuracy, ECE, entropy and NLL of a model file (.keras, a paper .pt, "
        "paper:min_ent / paper:mix_ent / paper:ce)",
        description="Evaluates a model file on the test split of the data (default: "
        "EMNIST-Letters, official split) and writes results.json, reliability.png and "
        "entropy_histogram.png to --output-dir.",
    )
    add_options(
        evaluate,
        EvaluateConfig,
        EVALUATE_GROUPS,
        exclude=("max_train_examples", "verbose"),
        output_dir="runs/evaluate",
    )
    return parser


def _tune(args) -> int:
    from keras_minent.tuning import TuneConfig, search

    search(options_to_config(TuneConfig, args))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Runs the command line. Expected errors (`KerasMinentError`: a configuration
    the run refuses, missing or corrupt data, a missing optional part, a lost peer;
    and Ctrl-C) are one line on stderr with exit status 2 (75 for a lost peer, 130
    for Ctrl-C); others keep their traceback."""
    from keras_minent._plotting import backend_missing, optional_missing

    try:
        try:
            import keras  # noqa: F401 - KERAS_BACKEND's package may be missing
        except ImportError as e:
            raise (backend_missing(e) or e) from e
        try:
            return _main(argv)
        except ModuleNotFoundError as e:  # an optional part imported where it is used
            raise (optional_missing(e) or e) from e
    except KerasMinentError as e:  # PeerLostError is handled in _main
        print(f"keras-minent: error: {error_message(e)}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    tune = (sys.argv[1:] if argv is None else argv)[:1] == ["tune"]
    if tune:
        from keras_minent._plotting import require

        require("keras_tuner", "tuning", "The tune command")
    # Help, --version and argument errors need nothing beyond `import keras_minent`:
    # the modules that train (data, tfds, plotting) and tune are imported below.
    args = build_parser(with_tune=tune).parse_args(argv)
    from keras_minent.distribute import EXIT_PEER_LOST
    from keras_minent.training.config import TrainConfig

    try:
        if args.command == "tune":
            return _tune(args)
        if args.command == "evaluate":
            from keras_minent.training.config import EvaluateConfig
            from keras_minent.training.evaluation import evaluate

            evaluate(options_to_config(EvaluateConfig, args))
            return 0
        config = options_to_config(TrainConfig, args)  # refused before the training modules load
        from keras_minent.training import reproduce, train, train_seeds

        if args.command == "reproduce":
            reproduce(config, args.seeds)
        elif args.seeds > 1 or config.seed_parallel is True:
            train_seeds(config, args.seeds)  # refuses --seed-parallel on for one run
        else:
            train(config)
    except PeerLostError as e:
        print(f"keras-minent: {e}", file=sys.stderr)
        import keras

        if keras.backend.backend() == "jax":
            # jax.distributed's exit barrier would wait for the lost peer, then abort.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_PEER_LOST)
        return EXIT_PEER_LOST
    except KeyboardInterrupt:
        print(
            "\nInterrupted. Run the same command again to continue from the last finished epoch.",
            file=sys.stderr,
        )
        return 130
    return 0
