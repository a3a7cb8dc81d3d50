"""Every output is written by one atomic, link-safe writer: one temporary-name pattern
and one cleaner of the temporary files a killed write leaves."""

from __future__ import annotations

import os
import re

import numpy as np

from keras_minent import _atomic


def test_every_write_uses_one_temporary_name_pattern_and_one_cleaner(tmp_path):
    names = [os.path.basename(_atomic.temp_name(tmp_path / n)) for n in ("m.keras", "state.json")]
    assert re.fullmatch(r"\.m\.[0-9a-f]{16}\.tmp\.keras", names[0]), names
    assert re.fullmatch(r"\.state\.[0-9a-f]{16}\.tmp\.json", names[1]), names
    assert names[0] != os.path.basename(_atomic.temp_name(tmp_path / "m.keras"))  # fresh
    left = [
        ".checkpoint-2.abc123.tmp.keras",  # a killed model save
        ".joint_state.0f3a.tmp.json",  # a killed JSON write
        ".best.keras.5d41402abc4b2a76b9719d911017c592.tmp",  # an older copy's name
    ]
    kept = ["checkpoint-2.keras", ".hidden", "notes.tmp", "state.json"]
    for name in left + kept:
        (tmp_path / name).write_text("x")
    _atomic.remove_temp_files(tmp_path, {"joint_state.json"})
    assert sorted(os.listdir(tmp_path)) == sorted(kept + [left[0], left[2]])
    _atomic.remove_temp_files(tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted(kept)


def test_publish_replaces_a_link_and_leaves_no_temporary_file(tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("precious")
    source = tmp_path / "checkpoint-1.keras"
    source.write_text("weights")
    os.symlink(outside, tmp_path / "checkpoint.keras")
    _atomic.publish(source, tmp_path / "checkpoint.keras")
    assert outside.read_text() == "precious"
    assert (tmp_path / "checkpoint.keras").read_text() == "weights"
    assert not (tmp_path / "checkpoint.keras").is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-1.keras", "checkpoint.keras", "outside"]
    _atomic.write_json(tmp_path / "r.json", {"b": 1, "a": [2]}, sort_keys=True, newline=True)
    assert (tmp_path / "r.json").read_text() == '{\n  "a": [\n    2\n  ],\n  "b": 1\n}\n'


def test_publish_copies_where_hard_links_fail_and_files_get_the_usual_mode(tmp_path, monkeypatch):
    def no_links(source, target):
        raise PermissionError(1, "Operation not permitted", source)

    monkeypatch.setattr(os, "link", no_links)
    source = tmp_path / "best-3.keras"
    source.write_bytes(b"\x00weights")
    _atomic.publish(source, tmp_path / "best.keras")
    assert (tmp_path / "best.keras").read_bytes() == b"\x00weights"
    assert not os.path.samefile(source, tmp_path / "best.keras")  # a copy
    assert sorted(os.listdir(tmp_path)) == ["best-3.keras", "best.keras"]
    mask = os.umask(0o022)
    os.umask(mask)
    assert (tmp_path / "best.keras").stat().st_mode & 0o777 == 0o666 & ~mask


def test_generated_data_files_replace_planted_links(tmp_path):
    from keras_minent.datasets import idx

    outside = tmp_path / "outside"
    outside.write_text("precious")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    names = [*idx.REQUIRED_FILES, "keras_minent_synthetic.json"]
    for name in names:
        os.symlink(outside, data_dir / name)
    images = np.zeros((2, 28, 28), np.uint8)
    idx.write_official_files(
        data_dir, {"train": (images, [0, 25]), "test": (images, [1, 2])}, synthetic=True
    )
    assert outside.read_text() == "precious"
    assert sorted(os.listdir(data_dir)) == sorted(names)
    assert not any((data_dir / name).is_symlink() for name in names)
    assert (data_dir / "keras_minent_synthetic.json").read_text() == '{"synthetic": true}\n'
