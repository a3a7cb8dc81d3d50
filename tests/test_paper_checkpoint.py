"""The paper's PyTorch checkpoints as Keras models: a PyTorch module written here from the
architecture the author's code builds, random weights, saved as the author saves it."""

from __future__ import annotations

import hashlib
import json
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from keras_minent import models, paper_files  # noqa: E402
from keras_minent._plotting import MissingExtraError  # noqa: E402
from keras_minent.cli import main  # noqa: E402
from keras_minent.datasets import idx  # noqa: E402
from keras_minent.paper_checkpoint import (  # noqa: E402
    PaperCheckpointError,
    from_paper_checkpoint,
    read_paper_checkpoint,
)

NORM = (0.1307, 0.3081)


def _block(cin: int, widths: tuple[int, ...]) -> nn.Sequential:
    parts = []
    for w in widths:
        parts += [nn.Conv2d(cin, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
        cin = w
    return nn.Sequential(*parts, nn.MaxPool2d(2, 2))


class LossWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.loss_1_weight = nn.Parameter(torch.tensor([0.83]))
        self.loss_2_weight = nn.Parameter(torch.tensor([1.27]))


class PaperNet(nn.Module):
    """VGG-5 (spinal=False) or Spinal-VGG-5 with 62 outputs, as the author's code lays it out
    (the modules listed again under `params`, as his two-learning-rate setup does)."""

    def __init__(self, spinal: bool = False, duplicates: bool = True):
        super().__init__()
        cin, self.spinal = 1, spinal
        for b, widths in enumerate(((64, 64), (128, 128), (256,) * 3, (256,) * 3), start=1):
            setattr(self, f"l{b}", _block(cin, widths))
            cin = widths[-1]
        if spinal:
            for i in range(1, 5):
                setattr(
                    self,
                    f"fc_spinal_layer{i}",
                    nn.Sequential(
                        nn.Dropout(0.5),
                        nn.Linear(128 if i == 1 else 256, 128),
                        nn.BatchNorm1d(128),
                        nn.ReLU(),
                    ),
                )
            self.fc_out = nn.Sequential(nn.Dropout(0.5), nn.Linear(512, 62))
            heads = [getattr(self, f"fc_spinal_layer{i}") for i in range(1, 5)] + [self.fc_out]
        else:
            self.classifier = nn.Sequential(
                nn.Dropout(0.5),
                nn.Linear(256, 512),
                nn.BatchNorm1d(512),
                nn.ReLU(),
                nn.Dropout(0.5),
                nn.Linear(512, 62),
            )
            heads = [self.classifier]
        self.loss_module = LossWeights()
        if duplicates:
            blocks = [self.l1, self.l2, self.l3, self.l4]
            self.params = nn.ModuleDict(
                {
                    "base": nn.ModuleList(blocks + heads),
                    "loss_weights": nn.ModuleList([self.loss_module]),
                }
            )

    def forward(self, x):
        for b in range(1, 5):
            x = getattr(self, f"l{b}")(x)
        x = x.view(x.size(0), -1)
        if not self.spinal:
            return self.classifier(x)
        a, b = x[:, :128], x[:, 128:]
        x1 = self.fc_spinal_layer1(a)
        x2 = self.fc_spinal_layer2(torch.cat([b, x1], 1))
        x3 = self.fc_spinal_layer3(torch.cat([a, x2], 1))
        x4 = self.fc_spinal_layer4(torch.cat([b, x3], 1))
        return self.fc_out(torch.cat([x1, x2, x3, x4], 1))


def make_net(spinal: bool = False, seed: int = 0, duplicates: bool = True) -> PaperNet:
    """Random weights; BatchNorm statistics and affine parameters moved away from 0 / 1."""
    torch.manual_seed(seed)
    net = PaperNet(spinal, duplicates)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.momentum = None  # running statistics: the average over the passes below
    net.train()
    with torch.no_grad():
        for k in range(3):  # statistics of images like the tests', so that logits vary
            images = np.concatenate([upright_images(16, seed + 10 + k), letter_like(16)])
            net(normalised(images))
    return net.eval()


def save_like_the_author(net: nn.Module, path) -> None:
    torch.save({"model_state": net.state_dict(), "epoch": 3, "accuracy": 95.9}, path)


def normalised(images: np.ndarray):
    """ToTensor then Normalize((0.1307,), (0.3081,)), as the author's loader."""
    x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
    return (x - NORM[0]) / NORM[1]


def torch_logits(net: nn.Module, images: np.ndarray) -> np.ndarray:
    """The author's logits: images as torchvision gives them (TRANSPOSED), normalised."""
    with torch.no_grad():
        return net(normalised(np.swapaxes(images, 1, 2))).numpy().astype(np.float64)


def upright_images(n: int = 8, seed: int = 0) -> np.ndarray:
    """Uint8 images that are not symmetric under transposition: a bright bar along the
    top (transposed, it runs down the left side) at a random height, on noise."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 80, size=(n, 28, 28), dtype=np.uint8)
    for i, top in enumerate(rng.integers(0, 20, size=n)):
        x[i, top : top + 5, 3:25] = 255
    return x


def letter_like(n: int) -> np.ndarray:
    return np.swapaxes(upright_images(n, seed=99), 1, 2)


@pytest.mark.backend_matrix
@pytest.mark.parametrize("spinal", [False, True], ids=["vgg5", "spinal_vgg5"])
def test_converted_logits_equal_the_torch_models_on_the_transposed_image(tmp_path, spinal):
    net = make_net(spinal)
    path = tmp_path / "model.pt"
    save_like_the_author(net, path)
    images = upright_images()
    expected = torch_logits(net, images)
    assert expected.shape == (8, 62)

    full = from_paper_checkpoint(path, all_outputs=True)
    got = np.asarray(full.predict(images[..., None], verbose=0), np.float64)
    diff = np.abs(got - expected).max()
    print(f"max |logit difference| {'spinal' if spinal else 'vgg5'}: {diff:.2e}")
    assert diff < 1e-4
    trainable = sum(int(np.prod(w.shape)) for w in full.trainable_weights)
    in_torch = [p for n, p in net.named_parameters() if not n.startswith("loss_module")]
    assert trainable == sum(p.numel() for p in in_torch)
    assert trainable == (3_656_446 if spinal else 3_672_830)
    # Without the transposed kernels the logits differ: the transposition is what matches.
    plain = torch_logits(net, np.swapaxes(images, 1, 2))
    assert np.abs(got - plain).max() > 1e-2

    letters = from_paper_checkpoint(path)
    assert letters.output_shape == (None, 26) and letters.name == full.name
    got26 = np.asarray(letters.predict(images[..., None], verbose=0), np.float64)
    np.testing.assert_allclose(got26, expected[:, 1:27], atol=1e-4)
    assert letters.count_params() == full.count_params() - 36 * 513  # 512 inputs + bias each
    layer = "spinal1_dense" if spinal else "head_dense"
    assert (layer in [x.name for x in letters.layers]) and letters.get_layer("normalize")


def test_read_reports_architecture_loss_weights_and_entries(tmp_path):
    path = tmp_path / "spinal.pt"
    save_like_the_author(make_net(spinal=True, duplicates=False), path)
    ckpt = read_paper_checkpoint(path)
    assert ckpt.architecture == "spinal_vgg5"
    assert ckpt.loss_weights == pytest.approx({"loss_1_weight": 0.83, "loss_2_weight": 1.27})
    assert ckpt.extra == {"epoch": 3, "accuracy": 95.9}
    assert not any(k.startswith(("params.", "loss_module.")) for k in ckpt.tensors)
    # a bare state_dict (no "model_state") reads too
    torch.save(make_net().state_dict(), tmp_path / "bare.pt")
    assert read_paper_checkpoint(tmp_path / "bare.pt").architecture == "vgg5"


class Payload:
    """Any class: pickling it needs code a safe load will not run."""


def test_pickled_object_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model_state": make_net().state_dict(), "args": Payload()}, path)
    with pytest.raises(PaperCheckpointError, match=r"evil\.pt: holds pickled Python objects"):
        read_paper_checkpoint(path)


def _edited(tmp_path, edit) -> str:
    state = make_net(duplicates=False).state_dict()
    edit(state)
    path = tmp_path / "edited.pt"
    torch.save({"model_state": state}, path)
    return str(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.pop("l3.4.running_var"), r"missing key l3\.4\.running_var"),
        (lambda s: s.update({"l5.0.weight": torch.zeros(3)}), r"unexpected key l5\.0\.weight"),
        (
            lambda s: s.update({"classifier.1.weight": torch.zeros(512, 300)}),
            r"classifier\.1\.weight has shape \(512, 300\), expected \(512, 256\)",
        ),
        (
            lambda s: s.update(
                {"classifier.5.weight": torch.zeros(26, 512), "classifier.5.bias": torch.zeros(26)}
            ),
            r"classifier\.5\.weight has 26 outputs",
        ),
        (
            lambda s: [s.pop(k) for k in list(s) if k.startswith("classifier")],
            r"holds neither VGG-5's head",
        ),
    ],
    ids=["missing", "unexpected", "shape", "outputs", "architecture"],
)
def test_bad_state_dicts_are_refused_naming_the_key(tmp_path, edit, message):
    path = _edited(tmp_path, edit)
    with pytest.raises(PaperCheckpointError, match=message) as info:
        from_paper_checkpoint(path)
    assert "\n" not in str(info.value) and "edited.pt" in str(info.value)


def test_the_authors_duplicate_entries_must_repeat_the_modules(tmp_path):
    state = make_net(duplicates=True).state_dict()
    assert "params.base.4.5.weight" in state and "params.loss_weights.0.loss_1_weight" in state
    state["params.base.0.0.weight"] = state["l1.0.weight"] + 1
    path = tmp_path / "dup.pt"
    torch.save({"model_state": state}, path)
    with pytest.raises(PaperCheckpointError, match=r"params\.base\.0\.0\.weight \(it does not"):
        read_paper_checkpoint(path)


def test_unreadable_files_are_refused(tmp_path):
    good = tmp_path / "good.pt"
    save_like_the_author(make_net(), good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(PaperCheckpointError, match=r"cut\.pt: not a readable PyTorch checkpoint"):
        read_paper_checkpoint(cut)
    with pytest.raises(PaperCheckpointError, match=r"nothere\.pt: no such file"):
        read_paper_checkpoint(tmp_path / "nothere.pt")


def test_public_names():
    assert models.from_paper_checkpoint is from_paper_checkpoint
    assert issubclass(models.PaperCheckpointError, ValueError)


# --- the paper's files: git blob ids, download, `evaluate` ---------------------------------


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


def test_without_torch_one_line_names_the_extra(tmp_path, monkeypatch, capsys):
    path = tmp_path / "m.pt"
    save_like_the_author(make_net(), path)
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails as if not installed
    with pytest.raises(MissingExtraError, match=r'pip install "keras-minent\[torch\]"'):
        from_paper_checkpoint(path)
    argv = ["evaluate", "--checkpoint", str(path), "--synthetic", "--output-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and 'needs torch, which is not installed: pip install "keras' in err
    )
