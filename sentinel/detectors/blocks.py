"""Hour blocks: the unit of memory of the baseline-learning detectors.

A detector that learns from history does not keep every sample. It keeps, per clock hour
("block"), a few numbers (count, median, spread, ...), recomputes its expected band when
a new block starts, and judges each step against that cached band in O(1). The batch path
computes the same per-block numbers for the whole series at once; both go through the
helpers here, row-wise on small matrices, so their results agree to the last bit.
"""

from __future__ import annotations

import math

import numpy as np

BLOCK = 3600.0
MAD_K = 1.4826  # MAD → standard deviation for normal data


def block_of(t: float) -> int:
    return math.floor(t / BLOCK)


def block_index(t: np.ndarray) -> np.ndarray:
    return np.floor(t / BLOCK).astype(np.int64)


def row_median(m: np.ndarray, srt: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Median of the non-NaN entries of each row of `m` (NaN for an empty row), and their
    count. Order statistics only, then one (lo + hi) * 0.5: the same bits for a row alone
    or inside a bigger matrix, with any NaN padding."""
    if srt is None:
        srt = np.sort(m, axis=1)  # NaN sorts last
    cnt = np.count_nonzero(~np.isnan(srt), axis=1)
    rows = np.arange(srt.shape[0])
    last = srt.shape[1] - 1
    lo = srt[rows, np.maximum(cnt - 1, 0) // 2]
    hi = srt[rows, np.minimum(cnt // 2, last)]
    med = (lo + hi) * 0.5
    med[cnt == 0] = np.nan
    return med, cnt


def row_mad(m: np.ndarray, med: np.ndarray) -> np.ndarray:
    """Median absolute deviation from `med`, per row (NaN for an empty row)."""
    return row_median(np.abs(m - med[:, None]))[0]


def gather(arr: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """arr[idx] with NaN where idx falls outside arr."""
    ok = (idx >= 0) & (idx < len(arr))
    out = np.full(idx.shape, np.nan)
    out[ok] = arr[idx[ok]]
    return out


def padded_rows(rows: np.ndarray, values: np.ndarray, nrows: int) -> tuple[np.ndarray, np.ndarray]:
    """Values grouped into a NaN-padded matrix, one row per group; `rows` (non-decreasing)
    gives each value's group. Returns the matrix and the group sizes."""
    cnt = np.zeros(nrows, dtype=np.int64)
    if len(values) == 0:
        return np.full((nrows, 1), np.nan), cnt
    gstart = np.concatenate([[0], np.flatnonzero(np.diff(rows)) + 1])
    glen = np.diff(np.append(gstart, len(rows)))
    cnt[rows[gstart]] = glen
    width = int(glen.max())
    m = np.full((nrows, width), np.nan)
    grp = rows[gstart]
    inner = glen[1:-1]
    if len(glen) > 2 and (inner == width).all() and grp[-1] - grp[0] == len(grp) - 1:
        # regular sampling: every inner group full and none missing, a reshape does it
        a, b = int(gstart[1]), int(gstart[-1])
        m[grp[1] : grp[-1]] = values[a:b].reshape(-1, width)
        m[grp[0], : glen[0]] = values[:a]
        m[grp[-1], : glen[-1]] = values[b:]
        return m, cnt
    col = np.arange(len(rows)) - np.repeat(gstart, glen)
    m.ravel()[rows * width + col] = values
    return m, cnt


class Ring:
    """Per-block values for the last `size` blocks, addressed by absolute block number;
    blocks never written read as NaN."""

    __slots__ = ("size", "data", "_stamp")

    def __init__(self, size: int, width: int = 1) -> None:
        self.size = size
        self.data = np.full((size, width), np.nan)
        self._stamp = np.full(size, -(2**62), dtype=np.int64)

    def put(self, b: int, values: np.ndarray | float) -> None:
        i = b % self.size
        self.data[i] = values
        self._stamp[i] = b

    def window(self, end: int, length: int) -> np.ndarray:
        """Rows for blocks end-length .. end-1 in order (NaN where absent)."""
        bs = np.arange(end - length, end, dtype=np.int64)
        i = bs % self.size
        out = self.data[i].copy()
        out[self._stamp[i] != bs] = np.nan
        return out

    def at(self, bs: np.ndarray) -> np.ndarray:
        i = bs % self.size
        out = self.data[i].copy()
        out[self._stamp[i] != bs] = np.nan
        return out

    def cols(self, bs: np.ndarray, js: tuple[int, ...]) -> list[list[float]]:
        """Columns js for blocks bs as lists of plain floats (NaN where absent)."""
        i = bs % self.size
        out = self.data[i][:, js]
        gone = self._stamp[i] != bs
        if gone.any():
            out[gone] = np.nan
        return out.T.tolist()
