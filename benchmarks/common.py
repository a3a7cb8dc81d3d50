"""Shared helpers of the benchmarks: machine description and result output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time


def machine() -> dict:
    """CPU, cores, GPU (if nvidia-smi answers) and versions, for every table."""
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        gpu = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,memory.total,driver_version",
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        if gpu.returncode == 0:
            info["gpu"] = gpu.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    for name in ("keras", "jax", "torch", "tensorflow", "numpy"):
        try:
            info[name] = __import__(name).__version__
        except Exception:
            pass
    return info


def median_time(fn, repeats: int, warmup: int = 2, sync=None) -> float:
    """Median wall time of `fn()` in seconds; `sync()` waits for the device."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def emit(rows: list[dict], title: str, path: str | None = None) -> None:
    """Prints a table of `rows` and, with `path`, appends them as JSON lines."""
    print(f"\n## {title}")
    if rows:
        keys = list(rows[0])
        widths = {k: max(len(k), *(len(_fmt(r.get(k))) for r in rows)) for k in keys}
        print(" | ".join(k.ljust(widths[k]) for k in keys))
        for r in rows:
            print(" | ".join(_fmt(r.get(k)).ljust(widths[k]) for k in keys))
    if path:
        with open(path, "a") as f:
            for r in rows:
                f.write(json.dumps({"benchmark": title, **r}) + "\n")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
    return "" if v is None else str(v)
