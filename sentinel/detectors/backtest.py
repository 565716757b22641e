"""`sentinel backtest`: replay a CSV history through a detector.

Input: a header `timestamp,value` (optionally `,volume`), then one row per step;
timestamp as ISO-8601 (naive = UTC) or unix seconds, an empty value = no data.
Output: `timestamp,value,score,alert`, one row per input row, timestamp and value echoed
as given, score in [0, 1], alert 1 when the detector is firing.

The detector runs causally: every verdict, including whatever the detector learned or
tuned for itself, depends only on that row and the rows before it, so the output for a
prefix of the input is the prefix of the output.
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from typing import IO

import numpy as np

from .spec import SignalKind, evaluate, spec_for


class BacktestError(ValueError):
    """Bad input: says on which line and what is wrong."""

    def __init__(self, line: int | None, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}" if line is not None else message)


def parse_timestamp(text: str) -> float:
    """Unix seconds from 'unix seconds' or ISO-8601 (a time without zone is UTC)."""
    s = text.strip()
    try:
        x = float(s)
    except ValueError:
        pass
    else:
        if math.isfinite(x):
            return x
        raise ValueError(s)
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _number(text: str) -> float | None:
    s = text.strip()
    if not s:
        return None
    x = float(s)  # ValueError for garbage; 'nan'/'inf' parse and mean no data
    return x if math.isfinite(x) else None


def read_csv(stream: IO[str]) -> tuple[list[list[str]], np.ndarray, np.ndarray, np.ndarray | None]:
    """Rows as given, and t, value, volume arrays. Raises BacktestError."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise BacktestError(1, "empty input: expected the header 'timestamp,value'") from None
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    if names not in (["timestamp", "value"], ["timestamp", "value", "volume"]):
        raise BacktestError(
            1,
            "expected the header 'timestamp,value' (or 'timestamp,value,volume'), "
            f"got {','.join(header)!r}",
        )
    width = len(names)
    rows: list[list[str]] = []
    ts: list[float] = []
    vs: list[float] = []
    vols: list[float] = []
    prev = -math.inf
    prev_line = 0
    for row in reader:
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != width:
            raise BacktestError(
                line, f"expected {width} fields ({','.join(names)}), got {len(row)}"
            )
        try:
            t = parse_timestamp(row[0])
        except ValueError:
            raise BacktestError(
                line, f"unparsable timestamp {row[0]!r} (expected ISO-8601 or unix seconds)"
            ) from None
        if t < prev:
            raise BacktestError(
                line, f"timestamp {row[0].strip()!r} goes backwards (line {prev_line} was later)"
            )
        prev, prev_line = t, line
        try:
            v = _number(row[1])
        except ValueError:
            raise BacktestError(
                line, f"unparsable value {row[1]!r} (a number, or empty for no data)"
            ) from None
        vol = None
        if width == 3:
            try:
                vol = _number(row[2])
            except ValueError:
                raise BacktestError(line, f"unparsable volume {row[2]!r}") from None
        rows.append([row[0].strip(), row[1].strip()])
        ts.append(t)
        vs.append(math.nan if v is None else v)
        vols.append(math.nan if vol is None else vol)
    volume = np.array(vols) if width == 3 else None
    return rows, np.array(ts, dtype=float), np.array(vs, dtype=float), volume


def _score(x: float) -> str:
    s = f"{x:.4f}".rstrip("0").rstrip(".")
    return s or "0"


def backtest_csv(
    input_stream: IO[str],
    output_stream: IO[str],
    signal_kind: str | None = None,
    detector: str | None = None,
) -> int:
    """Read the CSV history, run the detector causally, write the verdicts as CSV.
    detector: a kind ('auto', 'seasonal', 'static:threshold=0.3', ...; see
    DetectorSpec.parse); default: the product's default for the signal kind.
    Returns the number of rows written. Raises BacktestError on bad input (nothing is
    written then) and on a bad detector or signal kind."""
    try:
        kind = SignalKind(signal_kind) if signal_kind else None
    except ValueError:
        known = ", ".join(k.value for k in SignalKind)
        raise BacktestError(None, f"unknown signal kind {signal_kind!r} (known: {known})") from None
    try:
        spec = spec_for(kind, detector)
    except ValueError as err:
        raise BacktestError(None, f"bad detector {detector!r}: {err}") from None
    rows, t, v, volume = read_csv(input_stream)
    result = evaluate(spec, t, v, volume)
    out = csv.writer(output_stream, lineterminator="\n")
    out.writerow(["timestamp", "value", "score", "alert"])
    score = result.score.tolist()
    firing = result.firing.tolist()
    out.writerows(
        [r[0], r[1], _score(s), "1" if f else "0"]
        for r, s, f in zip(rows, score, firing, strict=True)
    )
    return len(rows)
