"""`seeds.png` / `reproduce.png`: every seed's test accuracy and ECE per arm."""

from __future__ import annotations

import dataclasses
import os

from helpers import SMALL

from keras_minent.training import PAPER_RESULTS, TrainConfig, joint_run, reproduce, seed_plots
from keras_minent.training.seeds import paper_accuracy

PNG = b"\x89PNG\r\n\x1a\n"


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG, path
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_reproduce_and_its_arms_draw_every_seed(tmp_path, monkeypatch):
    def fake_train_together(configs, output_dir, choice):  # results without training
        for c in configs:
            os.makedirs(c.output_dir, exist_ok=True)
        return [
            {"config": dataclasses.asdict(c), "test_accuracy": 0.95 + 0.004 * c.seed,
             "test_ece": 0.02 + 0.01 * c.seed, "test_mean_entropy": 0.2, "selected_epoch": 1,
             "val_accuracy": 0.9, "train_seconds": 1.0, "images_per_second": 1.0,
             "selection": "validation", "note": None}
            for c in configs
        ], {}  # fmt: skip

    monkeypatch.setattr(joint_run, "train_together", fake_train_together)
    reproduce(TrainConfig(output_dir=str(tmp_path), seed_parallel=True, **SMALL), 3)
    width, height = _png_size(tmp_path / "reproduce.png")
    assert width > height > 300
    for key in PAPER_RESULTS:
        assert _png_size(tmp_path / key.replace("/", "_") / "seeds.png")[1] > 300


def test_the_paper_number_is_marked_where_it_applies():
    assert paper_accuracy(TrainConfig(loss="ce", model="spinal_vgg5")) == 95.88
    assert paper_accuracy(TrainConfig(loss="min_ent", paper_loss_settings=True)) == 95.933
    assert paper_accuracy(TrainConfig(loss="min_ent")) is None  # not the paper's settings
    assert paper_accuracy(TrainConfig(loss="ce", dataset="mnist")) is None


def test_one_seed_arm_draws_without_an_interval(tmp_path):
    runs = [{"test_accuracy": 0.9, "test_ece": 0.1}]
    arm = seed_plots.arm("vgg5 + ce", runs, None)
    assert arm == {"name": "vgg5 + ce", "accuracies": [0.9], "eces": [0.1], "paper": None}
    seed_plots.plot_seeds([arm], str(tmp_path / "seeds.png"), title="one seed")
    assert _png_size(tmp_path / "seeds.png")[0] > 300
