"""Command line: `python -m keras_minent train|reproduce` (also `keras-minent ...`)."""

from __future__ import annotations

import argparse
import math
import os
import sys

PAPER_RECIPE = "Adam 0.005, batch 100, 200 epochs, augmentation, dropout 0.5, paper LR rule"


def _bool(text: str) -> bool | str:
    low = text.lower()
    if low == "auto":
        return "auto"
    if low in ("1", "true", "on", "yes"):
        return True
    if low in ("0", "false", "off", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected auto/on/off, got {text!r}")


def _train_arguments(p: argparse.ArgumentParser, default_out: str) -> None:
    loss = p.add_argument_group("loss")
    loss.add_argument("--loss", choices=("ce", "min_ent", "mix_ent"), default="min_ent")
    loss.add_argument(
        "--paper-settings",
        action="store_true",
        help="use the paper's published weights and log bases for min_ent / mix_ent",
    )
    loss.add_argument(
        "--reg-weight",
        type=float,
        default=None,
        help="weight of the entropy (min_ent) or swapped (mix_ent) term",
    )
    loss.add_argument("--ce-weight", type=float, default=1.0)
    loss.add_argument("--ce-log-base", type=float, default=math.e)
    loss.add_argument("--reg-log-base", type=float, default=math.e)
    loss.add_argument("--epsilon", type=float, default=1e-6, help="mix_ent's epsilon")
    loss.add_argument("--label-smoothing", type=float, default=0.0)

    rec = p.add_argument_group("recipe (defaults: the paper's: " + PAPER_RECIPE + ")")
    rec.add_argument("--model", choices=("vgg5", "spinal_vgg5"), default="vgg5")
    rec.add_argument("--epochs", type=int, default=200)
    rec.add_argument("--batch-size", type=int, default=100)
    rec.add_argument("--learning-rate", type=float, default=0.005)
    rec.add_argument("--lr-rule", choices=("paper", "constant"), default="paper")
    rec.add_argument("--dropout", type=float, default=0.5)
    rec.add_argument("--no-augment", dest="augment", action="store_false")
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="run this many seeds (seed, seed+1, ...) and report mean/std/95%% CI",
    )
    rec.add_argument(
        "--selection",
        choices=("validation", "test"),
        default="validation",
        help="validation: honest (default); test: the paper's protocol (optimistic)",
    )

    run = p.add_argument_group("run")
    run.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"),
    )
    run.add_argument("--xla", type=_bool, default="auto", help="auto, on or off")
    run.add_argument(
        "--distribute",
        choices=("none", "gpus", "multiworker"),
        default="none",
        help="gpus: all local GPUs (MirroredStrategy / DataParallel); multiworker: several "
        "machines (TF_CONFIG on TensorFlow, KERAS_DISTRIBUTION_* on JAX; see README). "
        "--batch-size is the global batch",
    )
    run.add_argument(
        "--steps-per-execution",
        default="auto",
        help="training steps per compiled call: auto (8 on GPU, 1 on CPU) or N",
    )
    run.add_argument("--output-dir", default=default_out)
    run.add_argument("--verbose", default="auto", help="Keras verbosity: auto, 0, 1, 2")

    _data_arguments(p)


def _data_arguments(p: argparse.ArgumentParser) -> None:
    data = p.add_argument_group("data")
    data.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    data.add_argument(
        "--idx-dir",
        default=None,
        help="directory with NIST's gzip.zip or the four emnist-letters-*.gz files",
    )
    data.add_argument("--no-download", dest="download", action="store_false")
    data.add_argument(
        "--synthetic",
        action="store_true",
        help="generated images in EMNIST's format (smoke test; numbers meaningless)",
    )
    data.add_argument("--synthetic-size", type=int, default=2600)


def _data_kwargs(args) -> dict:
    """The data and output options shared by `train`, `reproduce` and `tune`."""
    return {
        "output_dir": args.output_dir,
        "data_dir": args.data_dir,
        "idx_dir": args.idx_dir,
        "download": args.download,
        "synthetic": args.synthetic,
        "synthetic_size": args.synthetic_size,
        "verbose": args.verbose if args.verbose == "auto" else int(args.verbose),
    }


def _config(args):
    from keras_minent.training import TrainConfig

    return TrainConfig(
        loss=args.loss,
        paper_loss_settings=args.paper_settings,
        reg_weight=args.reg_weight,
        ce_weight=args.ce_weight,
        ce_log_base=args.ce_log_base,
        reg_log_base=args.reg_log_base,
        epsilon=args.epsilon,
        label_smoothing=args.label_smoothing,
        model=args.model,
        dropout=args.dropout,
        augment=args.augment,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_rule=args.lr_rule,
        seed=args.seed,
        selection=args.selection,
        precision=args.precision,
        jit_compile=args.xla,
        distribute=args.distribute,
        steps_per_execution=(
            "auto" if args.steps_per_execution == "auto" else int(args.steps_per_execution)
        ),
        **_data_kwargs(args),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-minent",
        description="Train VGG-5 with MIN-ENT / MIX-ENT on EMNIST-Letters (the paper's recipe).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train one configuration (resumes its output dir)")
    _train_arguments(train, "runs/emnist_letters")
    rep = sub.add_parser("reproduce", help="the paper's table: 4 configurations")
    _train_arguments(rep, "runs/reproduce")
    tune = sub.add_parser("tune", help="KerasTuner search of the regularizer weight (resumable)")
    _tune_arguments(tune)
    return parser


def _tune_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tuner", choices=("random", "bayesian", "hyperband"), default="random")
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--epochs-per-trial", type=int, default=10)
    p.add_argument(
        "--losses",
        nargs="+",
        default=["ce", "min_ent", "mix_ent"],
        choices=("ce", "min_ent", "mix_ent"),
    )
    p.add_argument("--weight-min", type=float, default=1e-3)
    p.add_argument("--weight-max", type=float, default=1.0)
    p.add_argument(
        "--objective", choices=("val_accuracy", "val_cross_entropy"), default="val_accuracy"
    )
    p.add_argument("--model", choices=("vgg5", "spinal_vgg5"), default="vgg5")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--learning-rate", type=float, default=0.005)
    p.add_argument(
        "--precision", default="float32", choices=("float32", "mixed_bfloat16", "mixed_float16")
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output-dir", default="runs/tune")
    p.add_argument(
        "--distribute",
        choices=("none", "gpus"),
        default="none",
        help="gpus: every trial on all local GPUs (--batch-size is the global batch); "
        "several machines: keras-tuner's chief/worker mode (README)",
    )
    p.add_argument("--verbose", default="auto", help="Keras verbosity: auto, 0, 1, 2")
    _data_arguments(p)


def _tune(args) -> None:
    from keras_minent.tuning import TuneConfig, search

    search(
        TuneConfig(
            tuner=args.tuner,
            trials=args.trials,
            epochs=args.epochs_per_trial,
            losses=tuple(args.losses),
            weight_min=args.weight_min,
            weight_max=args.weight_max,
            objective=args.objective,
            model=args.model,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            precision=args.precision,
            seed=args.seed,
            distribute=args.distribute,
            **_data_kwargs(args),
        )
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from keras_minent.datasets.idx import EmnistDataError
    from keras_minent.distribute import EXIT_PEER_LOST, PeerLostError
    from keras_minent.training import reproduce, train, train_seeds

    try:
        if args.command == "tune":
            _tune(args)
            return 0
        config = _config(args)
        if args.command == "reproduce":
            reproduce(config, args.seeds)
        elif args.seeds > 1:
            train_seeds(config, args.seeds)
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
    except (EmnistDataError, ValueError, RuntimeError) as e:
        print(f"keras-minent: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\nInterrupted. Run the same command again to continue from the last finished epoch.",
            file=sys.stderr,
        )
        return 130
    return 0
