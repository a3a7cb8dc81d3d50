"""The command line means what it says: refused combinations, defaults, --version."""

from __future__ import annotations

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
    ({"dropout": 1.0}, "dropout must be in"),
    ({"seed": -1}, "seed must be >= 0"),
    ({"learning_rate": float("inf")}, "learning_rate must be a finite number"),
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
