"""Sums over trailing time windows, the same to the last bit stepping and in batch.

Both paths take a window sum as the difference of two running totals (a cumulative
sum in batch, an accumulator when stepping); float addition in the same order gives the
same result, where a sliding add-and-subtract would drift apart.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class TimeWindow:
    """Window sums over (t - width, t] of running totals the caller keeps."""

    __slots__ = ("width", "_q", "_base")

    def __init__(self, width: float, n: int) -> None:
        self.width = width
        self._q: deque[tuple[float, tuple[float, ...]]] = deque()
        self._base: tuple[float, ...] = (0.0,) * n

    def push(self, t: float, totals: tuple[float, ...]) -> tuple[float, ...]:
        q = self._q
        q.append((t, totals))
        cut = t - self.width
        while q[0][0] <= cut:
            self._base = q.popleft()[1]
        base = self._base
        return tuple(a - b for a, b in zip(totals, base, strict=True))

    def span(self, t: float) -> float:
        """Seconds of data the window holds (oldest kept sample to t)."""
        return t - self._q[0][0] if self._q else 0.0


def cumulative(x: np.ndarray) -> np.ndarray:
    """Running total with a leading zero: out[i + 1] = x[0] + ... + x[i], added in order."""
    out = np.zeros(len(x) + 1)
    np.cumsum(x, out=out[1:])
    return out


def window_sums(t: np.ndarray, totals: np.ndarray, width: float) -> np.ndarray:
    """Window sums over (t - width, t] at every row, from `cumulative` totals (rows are the
    data rows only; rows without data add nothing to a window and are left out)."""
    j = np.searchsorted(t, t - width, side="right")
    return totals[1:] - totals[j]
