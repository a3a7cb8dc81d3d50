"""`--dataset` on bad data: each case names the file and what is wrong, in one line."""

from __future__ import annotations

import os

import numpy as np
import pytest
from data_files import good_npz, mnist_dir, save_npz, write_idx, write_png

from keras_minent.datasets import sources
from keras_minent.datasets.idx import DataError, EmnistDataError


@pytest.mark.parametrize(
    "over,message",
    [
        ({"y_train": np.arange(19) % 3}, r"bad.npz \(x_train, y_train\): 20 images but 19 labels"),
        ({"y_train": np.linspace(0, 2, 20)}, "labels must be integers"),
        ({"y_train": np.array(["a"] * 20)}, "labels must be integers"),
        ({"y_train": np.zeros(20, int)}, r"1 class\(es\) \(\[0\]\); classification needs"),
        ({"x_test": np.zeros((0, 28, 28), np.uint8), "y_test": np.zeros(0, int)}, "test split is empty"),
        ({"y_test": np.full(8, 7)}, r"labels \[7\] occur in the test split but not in the training"),
        ({"x_train": np.full((20, 28, 28), 0.5, np.float32)}, "whole pixel values 0..255"),
        ({"x_train": np.full((20, 28, 28), 256)}, "whole pixel values 0..255"),
        ({"x_test": np.zeros((8, 30, 28), np.uint8)}, "test images are .* must be the same"),
        ({"x_train": np.zeros((20, 8, 8), np.uint8), "x_test": np.zeros((8, 8, 8), np.uint8)}, "at least 16x16"),
    ],
)  # fmt: skip
def test_bad_npz(tmp_path, over, message):
    with pytest.raises(DataError, match=message):
        sources.load(save_npz(tmp_path, **good_npz(**over)))


def test_npz_lacking_keys_and_files_that_are_not_npz(tmp_path):
    path = save_npz(tmp_path, x_train=np.zeros((2, 28, 28)), y_train=np.zeros(2))
    with pytest.raises(DataError, match="bad.npz lacks x_test, y_test"):
        sources.load(path)
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(DataError, match="notes.txt: not a readable .npz file"):
        sources.load(str(other))


def test_bad_idx_directories(tmp_path):
    d, _ = mnist_dir(tmp_path, gz=False, n=(24, 12))
    write_idx(d / "t10k-labels-idx1-ubyte", np.zeros(11, np.uint8), 0)
    with pytest.raises(
        DataError, match=r"t10k-images-idx3-ubyte holds 12 images but .* 11 labels"
    ):
        sources.load(str(d))
    os.unlink(d / "t10k-labels-idx1-ubyte")
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte"):
        sources.load(str(d))
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bnot gzip")
    with pytest.raises(EmnistDataError, match="t10k-labels-idx1-ubyte.gz: corrupt or truncated"):
        sources.load(str(d))


def test_paths_of_neither_form_and_unknown_names(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match="holds neither IDX files .* nor images in class folders"):
        sources.kind_of(str(tmp_path / "empty"))
    with pytest.raises(DataError, match="no such file or directory, and not a tensorflow"):
        sources.kind_of(str(tmp_path / "missing.npz"))


def test_bad_image_folders(tmp_path):
    root = tmp_path / "imgs"
    for c in ("a", "b"):
        for i in range(6):
            write_png(root / c / f"{i}.png", value=i)
    write_png(root / "b" / "7.png", size=(21, 18))
    with pytest.raises(DataError, match=r"7.png: 21x18 pixels, but .*0.png is 20x18"):
        sources.load(str(root))
    (root / "b" / "7.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="7.png: not a readable image"):
        sources.load(str(root))
    split = tmp_path / "split"
    write_png(split / "train" / "a" / "0.png")
    write_png(split / "train" / "b" / "0.png")
    (split / "test" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="test holds no images"):
        sources.load(str(split))
    os.rename(split / "test", split / "val")
    with pytest.raises(DataError, match="holds train/ but no test/: give both"):
        sources.load(str(split))


def test_cli_prints_a_data_error_as_one_line(tmp_path, capsys):
    from keras_minent.cli import main

    path = save_npz(tmp_path, **good_npz(y_train=np.zeros(20, int)))
    code = main(["train", "--dataset", path, "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "classification needs at least 2" in err
