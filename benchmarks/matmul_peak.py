"""Measured bf16 matrix-multiply rate of the device (the ceiling for VGG-5's convolutions)."""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, median_time  # noqa: E402


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=8192)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(args.n, args.n, device=device, dtype=torch.bfloat16, generator=g)
    b = torch.randn(args.n, args.n, device=device, dtype=torch.bfloat16, generator=g)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    t = median_time(lambda: a @ b, repeats=10, warmup=3, sync=sync)
    rows = [{"device": device, "n": args.n, "bf16_tflops": round(2 * args.n**3 / t / 1e12, 1)}]
    emit(rows, "bf16 matmul peak", args.json)
    return rows


if __name__ == "__main__":
    main()
