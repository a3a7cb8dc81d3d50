"""The paper's PyTorch checkpoints as Keras models: a PyTorch module written from the
architecture the author's code builds (`paper_torch_models`), random weights, saved as the
author saves it."""

from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from paper_torch_models import (  # noqa: E402
    make_net,
    save_like_the_author,
    torch_logits,
    upright_images,
)

from keras_minent import models  # noqa: E402
from keras_minent._plotting import MissingExtraError  # noqa: E402
from keras_minent.cli import main  # noqa: E402
from keras_minent.paper_checkpoint import (  # noqa: E402
    PaperCheckpointError,
    from_paper_checkpoint,
    read_paper_checkpoint,
)


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
