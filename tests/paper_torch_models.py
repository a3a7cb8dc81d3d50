"""The author's VGG-5 / Spinal-VGG-5 written in PyTorch from the architecture of his code, for
the tests of `keras_minent.paper_checkpoint` and `evaluate` (imported after
`pytest.importorskip("torch")`)."""

from __future__ import annotations

import numpy as np
import torch

nn = torch.nn

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
