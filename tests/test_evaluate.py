"""`python -m keras_minent evaluate` and the paper's files: git blob ids, the `paper:`
download, and the numbers of a converted checkpoint against the PyTorch model's own."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from paper_torch_models import (  # noqa: E402
    make_net,
    nn,
    save_like_the_author,
    torch_logits,
    upright_images,
)

from keras_minent import paper_files  # noqa: E402
from keras_minent.cli import main  # noqa: E402
from keras_minent.datasets import idx  # noqa: E402
from keras_minent.paper_checkpoint import PaperCheckpointError, from_paper_checkpoint  # noqa: E402


def blob_id_independently(data: bytes) -> str:
    """git's blob id, computed here: SHA-1 of the header "blob <size>\\0" and the content."""
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def test_git_blob_id_of_right_wrong_and_truncated_files(tmp_path):
    assert paper_files.git_blob_id(_write(tmp_path / "empty", b"")) == (
        "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # `git hash-object` of an empty file
    )
    data = bytes(range(256)) * 40
    path = _write(tmp_path / "f.pt", data)
    right = blob_id_independently(data)
    assert paper_files.git_blob_id(path, chunk=1000) == right
    paper_files.check_blob_id(path, right, "f.pt")  # no error
    with pytest.raises(PaperCheckpointError, match=r"^f\.pt: git blob id [0-9a-f]{40}, not the"):
        paper_files.check_blob_id(path, "0" * 40, "f.pt")
    cut = _write(tmp_path / "cut.pt", data[:-1])
    with pytest.raises(PaperCheckpointError, match="different or incomplete file"):
        paper_files.check_blob_id(cut, right, "cut.pt")


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def letters_data(net: nn.Module, n: int = 60, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Upright test images, labelled so that accuracy is neither 0 nor 1: two thirds by the
    PyTorch model's own 26-way choice, the rest at random."""
    images = upright_images(n, seed)
    rng = np.random.default_rng(seed)
    labels = torch_logits(net, images)[:, 1:27].argmax(-1)
    labels[n * 2 // 3 :] = rng.integers(0, 26, size=n - n * 2 // 3)
    return images, labels


def write_emnist_dir(directory, images, labels) -> str:
    """The four files of EMNIST-Letters (images stored transposed, labels 1..26)."""
    train = upright_images(30, seed=7), np.arange(30) % 26
    idx.write_official_files(directory, {"train": train, "test": (images, labels)})
    return str(directory)


def _evaluate(tmp_path, checkpoint, idx_dir, out="eval", *extra) -> dict:
    (tmp_path / "data").mkdir(exist_ok=True)  # --data-dir must exist
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--idx-dir", idx_dir]
    argv += ["--data-dir", str(tmp_path / "data"), "--output-dir", str(tmp_path / out)]
    assert main([*argv, *extra]) == 0
    return json.loads((tmp_path / out / "results.json").read_text())


@pytest.mark.backend_matrix
def test_evaluate_gives_the_pytorch_models_accuracy(tmp_path, capsys):
    net = make_net()
    path = tmp_path / "95.933_min_ent_vgg_emnist_letters.pt"  # a published name, other bytes
    save_like_the_author(net, path)
    images, labels = letters_data(net)
    idx_dir = write_emnist_dir(tmp_path / "emnist", images, labels)
    r = _evaluate(tmp_path, path, idx_dir)

    logits = torch_logits(net, images)  # independent: the author's model, transposed images
    top62, top26 = logits.argmax(-1), logits[:, 1:27].argmax(-1)
    n = len(labels)
    acc26 = np.mean(top26 == labels)
    assert r["num_examples"] == n == 60
    assert r["test_accuracy"] == pytest.approx(acc26, abs=1e-12)
    assert 0.5 < acc26 < 1
    assert r["test_accuracy_se"] == pytest.approx(np.sqrt(acc26 * (1 - acc26) / n))
    assert r["test_accuracy_62way"] == pytest.approx(np.mean(top62 == labels + 1), abs=1e-12)
    assert r["outside_letters"] == int(np.sum((top62 < 1) | (top62 > 26)))
    z = logits[:, 1:27] - logits[:, 1:27].max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    assert r["test_nll"] == pytest.approx(-log_p[np.arange(n), labels].mean(), rel=1e-4)
    assert r["test_mean_entropy"] == pytest.approx(-(np.exp(log_p) * log_p).sum(-1).mean(), 1e-4)
    assert r["kind"] == "paper" and r["architecture"] == "vgg5"
    assert r["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert r["git_blob_id"] == blob_id_independently(path.read_bytes())
    assert r["git_blob_id_matches"] is False  # a published name, not the published file
    assert r["loss_weights"] == pytest.approx({"loss_1_weight": 0.83, "loss_2_weight": 1.27})
    assert r["paper_reported_accuracy"] == 95.933
    for name in ("reliability.png", "entropy_histogram.png"):
        assert (tmp_path / "eval" / name).read_bytes()[:4] == b"\x89PNG"
    table = capsys.readouterr().out
    assert f"{100 * acc26:.3f} +- " in table and "NOT the published id" in table

    # The converted model saved as .keras evaluates the same (26 outputs: no 62-way readout).
    keras_path = tmp_path / "converted.keras"
    from_paper_checkpoint(path).save(keras_path)
    k = _evaluate(tmp_path, keras_path, idx_dir, "eval_keras")
    assert k["kind"] == "keras" and k["test_accuracy"] == r["test_accuracy"]
    assert "test_accuracy_62way" not in k and k["test_nll"] == pytest.approx(r["test_nll"], 1e-5)


def test_paper_name_is_downloaded_verified_and_reused(tmp_path, monkeypatch, capsys):
    served = tmp_path / "served"
    served.mkdir()
    net = make_net()
    save_like_the_author(net, served / "m.pt")
    blob = blob_id_independently((served / "m.pt").read_bytes())
    monkeypatch.setattr(paper_files, "PAPER_URL", served.as_uri() + "/")
    monkeypatch.setitem(paper_files.PAPER_FILES, "min_ent", ("m.pt", blob, 95.933))
    images, labels = letters_data(net, n=20)
    idx_dir = write_emnist_dir(tmp_path / "emnist", images, labels)
    kept = tmp_path / "data" / "paper_checkpoints" / "m.pt"

    r = _evaluate(tmp_path, "paper:min_ent", idx_dir)
    assert kept.read_bytes() == (served / "m.pt").read_bytes()
    assert r["git_blob_id"] == blob and r["path"] == str(kept)
    (served / "m.pt").unlink()  # reused: no second download
    assert (
        _evaluate(tmp_path, "paper:min_ent", idx_dir, "again")["test_accuracy"]
        == (r["test_accuracy"])
    )

    # A download with another blob id is refused and nothing is kept.
    kept.unlink()
    (served / "m.pt").write_bytes(b"not the model")
    argv = ["evaluate", "--checkpoint", "paper:min_ent", "--idx-dir", idx_dir]
    argv += ["--data-dir", str(tmp_path / "data"), "--output-dir", str(tmp_path / "bad")]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-minent: error: file://") and "not the published" in err
    assert "\n" not in err and os.listdir(kept.parent) == []
    # Without the file anywhere: one line saying where to put it.
    (served / "m.pt").unlink()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert f"put it at {kept}" in err and "\n" not in err
    assert main([*argv, "--no-download"]) == 2
    assert "--no-download is set" in capsys.readouterr().err


def test_evaluate_refuses_a_model_that_does_not_fit_the_data(tmp_path, capsys):
    path = tmp_path / "m.pt"
    save_like_the_author(make_net(), path)
    npz = tmp_path / "ten.npz"
    x = np.zeros((20, 28, 28, 1), np.uint8)
    np.savez(npz, x_train=x, y_train=np.arange(20) % 10, x_test=x, y_test=np.arange(20) % 10)
    argv = ["evaluate", "--checkpoint", str(path), "--dataset", str(npz)]
    assert main([*argv, "--output-dir", str(tmp_path / "o")]) == 2
    assert "62 outputs and the data 10 classes" in capsys.readouterr().err
