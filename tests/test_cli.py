"""The command line means what it says: refused combinations, defaults, --version."""

from __future__ import annotations

import dataclasses
import os

import pytest

from keras_minent import __version__, training
from keras_minent.cli import REPRODUCE_FIXED, build_parser, main
from keras_minent.training import ConfigError, TrainConfig

#: Each refused combination (as TrainConfig arguments) and a part of its message.
REFUSED = [
    ({"loss": "ce", "reg_weight": 0.3}, "ignores --reg-weight"),
    ({"loss": "ce", "reg_log_base": 2.0}, "ignores --reg-log-base"),
    ({"loss": "ce", "ce_weight": 0.5}, "ignores --ce-weight"),
    ({"loss": "ce", "ce_log_base": 2.0}, "ignores --ce-log-base"),
    ({"loss": "ce", "paper_loss_settings": True}, "ignores --paper-settings"),
    ({"loss": "ce", "epsilon": 1e-3}, "--epsilon is mix_ent's"),
    ({"loss": "min_ent", "epsilon": 1e-3}, "--epsilon is mix_ent's"),
    ({"paper_loss_settings": True, "reg_log_base": 2.0}, "would ignore --reg-log-base"),
    ({"paper_loss_settings": True, "ce_weight": 0.5}, "would ignore --ce-weight"),
    ({"loss": "mix_ent", "paper_loss_settings": True, "ce_log_base": 3.0}, "--ce-log-base"),
    ({"synthetic_size": 104}, "--synthetic-size applies only with --synthetic"),
    ({"synthetic": True, "idx_dir": "EMNIST/raw"}, "would ignore --idx-dir"),
    # Invalid values are refused before any data is loaded (one line, exit 2).
    ({"dropout": 1.0}, "--dropout must be in"),
    ({"seed": -1}, "--seed must be >= 0"),
    ({"learning_rate": float("inf")}, "--learning-rate must be a finite number"),
]


@pytest.mark.parametrize("kwargs,message", REFUSED, ids=[str(k) for k, _ in REFUSED])
def test_refused_combination(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("-", r"\-")):
        TrainConfig(**kwargs)


def test_refused_combination_on_the_command_line(capsys):
    assert main(["train", "--loss", "ce", "--reg-weight", "0.3", "--synthetic"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ignores --reg-weight" in err


@pytest.mark.parametrize("command", ["train", "reproduce"])
def test_seeds_must_be_at_least_one(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--seeds", "0", "--synthetic"])
    assert e.value.code == 2 and "expected an integer >= 1" in capsys.readouterr().err


def test_accepted_combinations_mean_what_they_say():
    # --paper-settings with --reg-weight: the weight overrides the paper's (documented).
    loss = TrainConfig(paper_loss_settings=True, reg_weight=0.2).build_loss()
    assert loss.entropy_weight == 0.2 and loss.entropy_log_base == pytest.approx(10.73)
    assert "overrides" in _help("train")
    assert TrainConfig(loss="mix_ent", epsilon=1e-3).build_loss().epsilon == 1e-3
    assert TrainConfig(loss="ce", label_smoothing=0.1).build_loss().label_smoothing == 0.1
    assert TrainConfig(synthetic=True, synthetic_size=104).synthetic_size == 104


def _help(command: str) -> str:
    return build_parser()._subparsers._group_actions[0].choices[command].format_help()


def test_reproduce_does_not_offer_what_it_overrides():
    text = _help("reproduce")
    for field in REPRODUCE_FIXED:
        flag = "--paper-settings" if field == "paper_loss_settings" else "--" + field
        assert flag.replace("_", "-") + " " not in text, field
    args = build_parser().parse_args(["reproduce", "--epochs", "3"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["reproduce", "--loss", "ce"])
    from keras_minent.cli import options_to_config

    assert options_to_config(TrainConfig, args) == TrainConfig(
        output_dir="runs/reproduce", epochs=3
    )


def test_help_shows_every_default():
    for command in ("train", "reproduce", "tune"):
        parser = build_parser()._subparsers._group_actions[0].choices[command]
        for action in parser._actions:
            if action.dest in ("help", "options"):
                continue
            assert "default:" in (action.help or ""), (command, action.dest)


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"keras-minent {__version__}"


def test_train_and_tune_take_the_same_precisions():
    pytest.importorskip("keras_tuner")
    from keras_minent.tuning import RegularizationHyperModel, TuneConfig

    parsers = build_parser()._subparsers._group_actions[0].choices
    for command in ("train", "tune"):
        (action,) = [a for a in parsers[command]._actions if a.dest == "precision"]
        assert tuple(action.choices) == training.PRECISIONS, command
    assert build_parser().parse_args(["tune", "--precision", "auto"]).precision == "auto"
    assert TuneConfig(precision="auto").precision == "auto"
    # "auto" is resolved as train resolves it (float32 on a CPU).
    want = training.resolve_precision("auto")
    assert RegularizationHyperModel(precision="auto").precision == want


def test_a_missing_optional_module_anywhere_is_one_line(monkeypatch, capsys):
    def needs_tfds(config):
        raise ModuleNotFoundError(
            "No module named 'tensorflow_datasets'", name="tensorflow_datasets"
        )

    monkeypatch.setattr(training, "train", needs_tfds)
    assert main(["train", "--synthetic"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "keras-minent[data]"' in err

    def bug(config):
        raise ModuleNotFoundError("No module named 'nonexistent'", name="nonexistent")

    monkeypatch.setattr(training, "train", bug)
    with pytest.raises(ModuleNotFoundError):  # not an optional part: the traceback stays
        main(["train", "--synthetic"])


# ---------------------------------------------------------------- what the options say


def _refused_by_argparse(argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def test_verbose_takes_only_kerass_levels(capsys):
    err = _refused_by_argparse(["train", "--verbose", "5", "--synthetic"], capsys)
    assert "argument --verbose: invalid choice: 5" in err
    assert build_parser().parse_args(["train", "--verbose", "2"]).verbose == 2
    with pytest.raises(ConfigError, match="--verbose must be auto, 0, 1 or 2"):
        TrainConfig(verbose=5)


def test_options_are_not_abbreviated(capsys):
    err = _refused_by_argparse(["train", "--epoch", "1", "--synthetic"], capsys)
    assert "unrecognized arguments: --epoch 1" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["tune", "--tuner", "hyperband", "--trials", "5"],
            "--tuner hyperband does not use --trials",
        ),
        (
            ["tune", "--losses", "ce", "--weight-min", "0.01"],
            "--losses ce has no regularizer weight: --weight-min would apply to nothing",
        ),
    ],
)
def test_tune_refuses_options_it_would_ignore(argv, message, tmp_path, capsys):
    pytest.importorskip("keras_tuner")
    assert main([*argv, "--output-dir", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"keras-minent: error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "t").exists()


def test_a_missing_idx_dir_is_named_as_missing(tmp_path, capsys):
    missing = tmp_path / "EMNIST" / "raw"
    argv = ["train", "--idx-dir", str(missing), "--data-dir", str(tmp_path)]
    assert main([*argv, "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"--idx-dir {missing} does not exist" in err and "lacks" not in err, err


@pytest.mark.parametrize(
    "argv, line",
    [
        (
            ["--reg-weight", "-1"],
            "--reg-weight must be >= 0 (it weights a non-negative term; a negative weight "
            "would reward the opposite). Received: --reg-weight -1.0",
        ),
        (["--loss", "mix_ent", "--reg-log-base", "0.5"], "--reg-log-base must be > 1"),
        (["--epochs", "0"], "--epochs must be >= 1 (got 0)."),
        (["--dropout", "1"], "--dropout must be in [0, 1) (got 1.0)."),
    ],
)
def test_messages_name_the_options_typed(argv, line, capsys):
    assert main(["train", "--synthetic", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"keras-minent: error: {line}"), err
    assert "Argument" not in err and "TrainConfig" not in err and "_" not in err.split()[3]


def _fake_train(accuracies):
    """`train` that reports a run as `report_run` does, with the given test accuracies."""

    def train(config):
        os.makedirs(config.output_dir, exist_ok=True)
        result = {
            "config": dataclasses.asdict(config),
            "test_accuracy": accuracies[config.seed], "test_ece": 0.05,
            "test_mean_entropy": 0.2, "selected_epoch": 1, "val_accuracy": 0.5,
            "train_seconds": 1.0, "images_per_second": 1.0, "selection": "validation",
            "note": None,
        }  # fmt: skip
        training.print_summary([result])
        return result

    return train


def test_one_seed_has_no_interval_and_reproduce_prints_each_table_once(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(training.seeds, "train", _fake_train([0.6355]))
    argv = ["reproduce", "--synthetic", "--seed-parallel", "off", "--output-dir", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("test accuracy over 1 seed: 63.550 (one run: no interval)") == 4
    assert out.count("val acc test acc") == 4  # each arm's one run: its table once
    assert "nan" not in out
    (row,) = [line for line in out.splitlines() if line.startswith("vgg5/min_ent ")]
    assert row.split()[3:5] == ["-", "1"]  # std, n


def test_an_interval_wider_than_accuracys_range_is_clipped_and_said(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(training.seeds, "train", _fake_train([0.03, 0.40]))
    argv = ["train", "--synthetic", "--seeds", "2", "--seed-parallel", "off"]
    assert main([*argv, "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    # mean 21.5, std 0.37 / sqrt(2) = 26.163, half width t(0.975, 1) * std / sqrt(2) = 235.065
    assert (
        "test accuracy over 2 seeds: 21.500 +- 26.163 (95% CI 0.000..100.000, clipped to "
        "0..100: the t-interval of 2 seeds, -213.565..256.565, is wider than accuracy's "
        "range; more seeds narrow it)"
    ) in out


def test_a_data_dir_that_does_not_exist_is_refused_not_created(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_MINENT_DATA", str(tmp_path / "home"))
    typo = tmp_path / "dtaa"
    assert main(["train", "--data-dir", str(typo), "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"keras-minent: error: --data-dir {typo} does not exist: create it, or leave "
        f"--data-dir out to use {tmp_path / 'home'} (created when needed).\n"
    )
    assert not typo.exists() and not (tmp_path / "home").exists()
