"""Where keras-minent's PyTorch backend loses against plain PyTorch.

One process, KERAS_BACKEND=torch: the paper-style eager PyTorch loop
(`torch_peer.py`'s `paper` form) and VGG-5 + MIN-ENT through `model.fit` with
the train command's compile settings, varying one thing at a time:
augmentation on/off, the train command's metrics on/off, `jit_compile`
(torch.compile) on/off. Configurations are interleaved over `--rounds` and the
median of each reported, with the ratio to the peer of the same run. `--profile`
prints torch.profiler's top operators of one training step.

    KERAS_BACKEND=torch python benchmarks/torch_backend.py --batch 100 --steps 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.dirname(__file__))
import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import emit, machine  # noqa: E402
from torch_peer import vgg5_torch  # noqa: E402

import keras_minent  # noqa: E402
from keras_minent import _augmentation  # noqa: E402
from keras_minent.metrics import ExpectedCalibrationError, PredictiveEntropy  # noqa: E402

#: name: (augment (True, False or "keras"), metrics of the train command, jit_compile)
CONFIGS = {
    "train command (aug, metrics, eager)": (True, True, False),
    "train command, Keras's per-image augmentation": ("keras", True, False),
    "no augmentation": (False, True, False),
    "no metrics": (True, False, False),
    "no aug, no metrics": (False, False, False),
    "torch.compile (aug, metrics)": (True, True, True),
    "torch.compile, no aug": (False, True, True),
}


def build(augment: bool, metrics: bool, jit: bool) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras_minent.vgg5(augment=bool(augment), seed=0)
    model._augment_kind = augment
    model.compile(
        keras.optimizers.Adam(0.005),
        keras_minent.losses.get("min_ent", paper_settings=True, from_logits=True),
        metrics=["accuracy", PredictiveEntropy(), ExpectedCalibrationError()] if metrics else None,
        jit_compile=jit,
    )
    return model


def time_epoch(model, x, y, batch) -> float:
    # "keras": Keras's own torch image ops (one image at a time), as before the batched augmentation.
    _augmentation.BATCHED_TORCH_AUGMENTATION = getattr(model, "_augment_kind", True) != "keras"
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def peer_epoch(device: str, batch: int, steps: int):
    """One epoch of `torch_peer.py`'s paper form (eager float32, NCHW, no augmentation)."""
    torch.manual_seed(0)
    model = vgg5_torch().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.005)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(steps, batch, 1, 28, 28, device=device)
    y = torch.randint(0, 26, (steps, batch), device=device)

    def epoch() -> float:
        t0 = time.perf_counter()
        for i in range(steps):
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[i]), y[i]).backward()
            opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    return epoch


def profile_step(model, x, y, batch, top: int = 0) -> int:
    """Profiles two training steps; prints the top operators; returns operators per step."""
    from torch.profiler import ProfilerActivity, profile

    _augmentation.BATCHED_TORCH_AUGMENTATION = getattr(model, "_augment_kind", True) != "keras"
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=acts) as prof:
        model.fit(x[: 2 * batch], y[: 2 * batch], batch_size=batch, epochs=1, verbose=0)
    table = prof.key_averages()
    if top:
        print(table.table(sort_by="self_cpu_time_total", row_limit=top))
    return sum(e.count for e in table if e.key.startswith("aten::")) // 2


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--steps", type=int, default=6, help="steps per timed epoch")
    p.add_argument("--rounds", type=int, default=3, help="timed epochs per configuration")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--profile", type=int, default=0, help="print the top N ops of each config")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    assert keras.backend.backend() == "torch", "run with KERAS_BACKEND=torch"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print({**machine(), "device": device})
    n = args.batch * args.steps
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 28, 28, 1), dtype=np.uint8)
    y = rng.integers(0, 26, size=n)
    models_, times, compile_s = {}, {name: [] for name in args.configs}, {}
    for name in args.configs:  # build and warm up (first epoch = tracing/compilation)
        models_[name] = build(*CONFIGS[name])
        compile_s[name] = time_epoch(models_[name], x, y, args.batch)
        print(f"warm-up {name}: {compile_s[name]:.1f} s", flush=True)
    peer, peer_times = peer_epoch(device, args.batch, args.steps), []
    peer()  # warm-up
    for _ in range(args.rounds):  # interleaved, so drift of the shared CPU hits all alike
        peer_times.append(peer())
        for name in args.configs:
            times[name].append(time_epoch(models_[name], x, y, args.batch))
    peer_ips = n / statistics.median(peer_times)
    rows = [
        {
            "implementation": "plain PyTorch, paper form (eager f32, no aug)",
            "images_per_s": round(peer_ips, 1),
            "vs_peer": 1.0,
            "warmup_s": None,
            "aten_ops_per_step": None,
        }
    ]
    for name in args.configs:
        ips = n / statistics.median(times[name])
        if args.profile:
            print(f"\n### profile: {name}")
        ops = profile_step(models_[name], x, y, args.batch, args.profile)
        rows.append(
            {
                "implementation": f"keras torch: {name}",
                "images_per_s": round(ips, 1),
                "vs_peer": round(ips / peer_ips, 3),
                "warmup_s": round(compile_s[name], 1),
                "aten_ops_per_step": ops,
            }
        )
    for r in rows:
        r.update(batch=args.batch, device=device, torch=torch.__version__)
    emit(rows, f"Keras PyTorch backend vs plain PyTorch ({device})", args.json)
    return rows


if __name__ == "__main__":
    main()
