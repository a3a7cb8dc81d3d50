"""The PyTorch peer: the same VGG-5 training step written in plain PyTorch.

Two forms, timed in the same run as keras-minent (see gpu_suite.sh):

* `paper`: as the paper's code ran it: float32, eager, NCHW, batch 100.
* `tuned`: as a strong PyTorch user would: bf16 autocast, channels_last,
  `torch.compile` (on a GPU; on CPU too, where a C++ compiler exists).

Same architecture as `keras_minent.vgg5` (3x3 convs with BN+ReLU, 4 pools,
Dropout/Dense 512/BN/ReLU/Dropout/Dense 26), Adam, cross entropy, no
augmentation (the paper's code augments on the CPU in its data loader).

    python benchmarks/torch_peer.py --modes paper tuned
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine, median_time  # noqa: E402

BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (256, 256, 256))


def vgg5_torch(num_classes: int = 26, dropout: float = 0.5) -> nn.Module:
    layers, cin = [], 1
    for widths in BLOCKS:
        for w in widths:
            layers += [nn.Conv2d(cin, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            cin = w
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(
        *layers,
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(256, 512),
        nn.BatchNorm1d(512),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(512, num_classes),
    )


def measure(mode: str, batch: int, steps: int, device: str) -> dict:
    torch.manual_seed(0)
    model = vgg5_torch().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.005)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(steps, batch, 1, 28, 28, device=device)
    y = torch.randint(0, 26, (steps, batch), device=device)
    tuned = mode == "tuned"
    if tuned:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=tuned):
            loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    fn = torch.compile(step) if tuned else step
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def epoch():
        for i in range(steps):
            xb = x[i].contiguous(memory_format=torch.channels_last) if tuned else x[i]
            fn(xb, y[i])

    t = median_time(epoch, repeats=3, warmup=1, sync=sync)
    return {
        "backend": "pytorch (plain)",
        "form": mode,
        "precision": "bf16 autocast" if tuned else "float32",
        "batch": batch,
        "compiled": tuned,
        "images_per_s": round(batch * steps / t, 1),
    }


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--modes", nargs="+", default=["paper", "tuned"])
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print({**machine(), "device": device})
    rows = [measure(m, args.batch, args.steps, device) for m in args.modes]
    for r in rows:
        print(r, flush=True)
    emit(rows, f"PyTorch peer VGG-5 ({device})", args.json)
    return rows


if __name__ == "__main__":
    main()
