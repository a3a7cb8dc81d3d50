"""Seeded permutations that are the same on every machine, version and backend.

The validation carve-out and every epoch's training order come from one
documented algorithm that uses only 64-bit integer arithmetic, so they depend
neither on NumPy's random `Generator` stream (which NumPy's policy allows to
change between versions) nor on TensorFlow. The algorithm, precisely enough
to re-implement it in any language (all arithmetic modulo 2**64):

```
GOLDEN = 0x9E3779B97F4A7C15
mix(z):                      # SplitMix64's finaliser
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    return z ^ (z >> 31)
state(key = (k_1, ..., k_m)):  # integers; negative ones taken modulo 2**64
    s = 0
    for k in key: s = mix(s + GOLDEN + k)
    return s
permutation(n, key):
    v[i] = mix(state(key) + (i + 1) * GOLDEN)   for i = 0 .. n-1
    return the indices 0 .. n-1 sorted by v (ascending; equal v by index)
```

`v` is the output stream of SplitMix64 seeded with `state(key)`, so the
permutation is "sort the positions by their SplitMix64 number". Keys:

* validation carve-out: `(VALIDATION_SEED,)`, its first `round(n / 12)` sorted;
* training order of epoch `e` with seed `s`: `(s, e)`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

_MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def _mix_int(z: int) -> int:
    z &= _MASK
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on a uint64 array (wrap-around intended)."""
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(_M1)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def key_state(key: int | Iterable[int]) -> int:
    """The 64-bit state of a key (an integer or a tuple of integers)."""
    parts = (key,) if isinstance(key, int | np.integer) else tuple(key)
    s = 0
    for k in parts:
        s = _mix_int(s + GOLDEN + (int(k) & _MASK))
    return s


def hash_values(n: int, key: int | Iterable[int]) -> np.ndarray:
    """`v[i]` of the module docstring: n SplitMix64 numbers (uint64) for `key`."""
    state = np.uint64(key_state(key))
    with np.errstate(over="ignore"):
        steps = np.arange(1, n + 1, dtype=np.uint64) * np.uint64(GOLDEN)
        return _mix(steps + state)


def permutation(n: int, key: int | Iterable[int]) -> np.ndarray:
    """A permutation of `range(n)` determined by `key` only (see the module docstring).

    Args:
        n: Length.
        key: An integer or a tuple of integers, e.g. `(seed, epoch)`.

    Returns:
        int64 array: the positions sorted by their SplitMix64 number.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}.")
    return np.argsort(hash_values(n, key), kind="stable").astype(np.int64)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The training order of epoch `epoch` for `seed`: `permutation(n, (seed, epoch))`."""
    return permutation(n, (int(seed), int(epoch)))


def epoch_batches(
    n: int,
    batch_size: int,
    seed: int,
    epoch: int,
    drop_remainder: bool = False,
    shard: tuple[int, int] | None = None,
) -> list[np.ndarray]:
    """Indices of each batch of one epoch, as `training_dataset` yields them.

    The epoch's order is cut into batches of `batch_size` (the last one
    smaller, or dropped with `drop_remainder`); with `shard=(index, count)`
    each batch is cut into `count` equal contiguous parts and part `index`
    is kept.
    """
    order = epoch_order(n, seed, epoch)
    stop = (n // batch_size) * batch_size if drop_remainder else n
    index, count = shard or (0, 1)
    part = batch_size // count
    out = []
    for start in range(0, stop, batch_size):
        b = order[start : min(start + batch_size, stop)]
        if count > 1:
            b = b[index * part : (index + 1) * part]
        out.append(b)
    return out
