"""One table from the JSON lines the GPU suite wrote: throughput, ratios, recipe time."""

from __future__ import annotations

import argparse
import json

RECIPE_IMAGES = 200 * 124_800  # the paper's 200 epochs of the official training split


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("jsonl")
    args = p.parse_args(argv)
    rows = [json.loads(line) for line in open(args.jsonl) if line.strip()]
    peak = next((r["bf16_tflops"] for r in rows if "bf16_tflops" in r), None)
    train = [r for r in rows if "images_per_s" in r]
    peer = {r["form"]: r["images_per_s"] for r in train if "form" in r}
    print("\n## GPU suite summary")
    print(f"measured bf16 matmul peak: {peak} TFLOP/s")
    head = (
        "what",
        "precision",
        "batch",
        "aug",
        "spe",
        "img/s",
        "vs paper-torch",
        "vs tuned-torch",
        "200 ep (min)",
        "% bf16 peak",
    )
    print(" | ".join(head))
    for r in train:
        what = r.get("implementation") or f"{r['backend']} {r.get('loss', r.get('form', ''))}"
        ips = r["images_per_s"]
        tflops = r.get("tflops")
        cells = (
            what,
            r.get("precision"),
            r.get("batch"),
            r.get("augment", "-"),
            r.get("spe", "-"),
            f"{ips:.0f}",
            f"{ips / peer['paper']:.2f}x" if "paper" in peer else "-",
            f"{ips / peer['tuned']:.2f}x" if "tuned" in peer else "-",
            f"{RECIPE_IMAGES / ips / 60:.1f}",
            f"{100 * tflops / peak:.1f}" if tflops and peak else "-",
        )
        print(" | ".join(str(c) for c in cells))
    runs = [r for r in rows if "epoch_images_per_s" in r]
    if runs:
        print("\n## The train command: whole epochs (validation, checkpoint, metrics) vs steps")
        keys = (
            ("backend", "backend"),
            ("precision", "precision"),
            ("batch", "batch"),
            ("fit images", "fit_images"),
            ("epoch s", "epoch_s"),
            ("epoch img/s", "epoch_images_per_s"),
            ("step-only img/s", "step_images_per_s"),
            ("epoch/steps", "whole_epoch_vs_steps"),
            ("outside steps", "outside_steps"),
            ("200 epochs (min)", "recipe_200_epochs_min"),
        )
        print(" | ".join(k for k, _ in keys))
        for r in runs:
            print(" | ".join(str(r.get(f, "-")) for _, f in keys))
            print(f"  (precision: {r.get('precision_reason')})")
        if "paper" in peer:
            for r in runs:
                ratio = r["epoch_images_per_s"] / peer["paper"]
                print(f"  {r['backend']} whole epoch vs paper-style PyTorch steps: {ratio:.2f}x")
    together = [r for r in rows if "vs_alone" in r]
    if together:
        print("\n## Seeds trained together (--seed-parallel): aggregate training images/s")
        print("mode | members | train img/s | vs alone | val img/s | 30 runs x 200 epochs (h)")
        for r in together:
            print(
                f"{r['mode']} | {r['members']} | {r['train_images_per_s']:.0f} | "
                f"{r['vs_alone']}x | {r['val_images_per_s']:.0f} | {r['projected_30x200_h']}"
            )
    losses = [r for r in rows if "vs_ce" in r]
    if losses:
        print("\nloss forward+backward vs cross entropy:")
        for r in losses:
            print(
                f"  {r['backend']} {r['mode']} B={r['batch']} {r['loss']}: {r['us']} us, {r['vs_ce']}x"
            )


if __name__ == "__main__":
    main()
