"""`sentinel backtest`: replay a CSV history through a detector.

Input: a header `timestamp,value` (optionally `,volume`), then one row per step;
timestamp as ISO-8601 (naive = UTC) or unix seconds, an empty value = no data.
Output: `timestamp,value,score,firing,alert`, one row per input row, in file order,
timestamp and value echoed as given, score in [0, 1]; `firing` is the alert's state on
that row and `alert` is 1 only on the rows where a page would go out (see `alert_states`
and `pages` for the rules, the sentinel's own).

Everything is causal: every verdict, including whatever the detector learned or tuned
for itself, the alert state and the page, depends only on that row and the rows before
it, so the output for a prefix of the input is the prefix of the output.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

import numpy as np

from .spec import SignalKind, evaluate, spec_for

# The alerting's default `flap_minutes`: a re-fire this soon after an alert resolved
# reopens the same alert and its group instead of paging again.
DEFAULT_FLAP_MINUTES = 15.0


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


@dataclass(frozen=True)
class Backwards:
    """Rows whose timestamp is older than a row before them, for the one-line notice."""

    rows: int  # rows older than the latest timestamp before them
    steps: int  # places where the timestamp goes back from the row before
    first_line: int
    first_timestamp: str
    previous_line: int
    previous_timestamp: str

    def notice(self) -> str:
        rows = "1 row is" if self.rows == 1 else f"{self.rows} rows are"
        steps = "1 backward step" if self.steps == 1 else f"{self.steps} backward steps"
        return (
            f"sentinel backtest: timestamps go backwards: {rows} older than a row before "
            f"them ({steps}; the first at line {self.first_line}, {self.first_timestamp!r} "
            f"after {self.previous_timestamp!r} on line {self.previous_line}); replayed in "
            "file order, the clock held at the latest time seen until the timestamps pass it"
        )


@dataclass(frozen=True)
class History:
    rows: list[list[str]]  # timestamp and value as given
    t: np.ndarray  # unix seconds as written, in file order
    value: np.ndarray  # NaN = no data
    volume: np.ndarray | None
    backwards: Backwards | None


def read_csv(stream: IO[str]) -> History:
    """The rows in file order. Raises BacktestError naming the line of the first bad row."""
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
    latest = -math.inf
    prev, prev_line = -math.inf, 0
    back_rows = back_steps = 0
    first_back: tuple[int, str, int, str] | None = None
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
        if t < latest:
            back_rows += 1
        if t < prev:
            back_steps += 1
            if first_back is None:
                first_back = (line, row[0].strip(), prev_line, rows[-1][0])
        latest = max(latest, t)
        prev, prev_line = t, line
        rows.append([row[0].strip(), row[1].strip()])
        ts.append(t)
        vs.append(math.nan if v is None else v)
        vols.append(math.nan if vol is None else vol)
    backwards = None
    if first_back is not None:
        backwards = Backwards(back_rows, back_steps, *first_back)
    return History(
        rows=rows,
        t=np.array(ts, dtype=float),
        value=np.array(vs, dtype=float),
        volume=np.array(vols) if width == 3 else None,
        backwards=backwards,
    )


def replay_clock(t: np.ndarray) -> np.ndarray:
    """The times the detector is given: each row's own, or the latest time seen so far
    when the row's is older (a repeated hour at a DST change, a clock stepped back).

    Holding the clock rather than shifting later rows forward keeps every row at or
    after a backward stretch on its own time, so seasonal detectors stay aligned with
    the file's clock (business traffic follows local time across a DST change) and an
    error is confined to the stretch itself. The held rows are judged as arriving at
    that instant: they count towards the windows and the persistence rules, but no
    time passes for `for`/`keep firing` durations until the timestamps move on. Uses
    only the rows up to each one, so the replay stays causal."""
    return np.maximum.accumulate(t) if len(t) else t


def alert_states(firing: np.ndarray, anomalous: np.ndarray, no_data: np.ndarray) -> np.ndarray:
    """Whether the series' alert is firing after each row, by the sentinel's alert state
    machine (`sentinel.alerts.decide`): it starts firing when the detector fires, stays
    firing while the rows stay anomalous even if the detector's own firing lapses, and
    resolves on the first calm row. A row without data keeps the state, as the sentinel
    does until the signal's no-data window passes (the no-data alert itself depends on
    the signal's catalogue entry, which a CSV replay does not have)."""
    out = np.zeros(len(firing), dtype=bool)
    state = False
    for i, (f, a, nd) in enumerate(
        zip(firing.tolist(), anomalous.tolist(), no_data.tolist(), strict=True)
    ):
        if not nd:
            state = f or (state and a)
        out[i] = state
    return out


def pages(t: np.ndarray, firing: np.ndarray, flap_seconds: float) -> np.ndarray:
    """The rows on which a page goes out: where the alert starts firing, except a re-fire
    within `flap_seconds` of the end of the previous firing episode, which the sentinel
    folds into that episode (it reopens the same alert and group, and the group resumes
    its escalation where it stood instead of paging from the start).

    Escalation to the next step or a policy repeat while nobody acknowledges is not a
    page here: it depends on the people and the alerting configuration, not on the
    signal, so one firing episode counts as one page."""
    out = np.zeros(len(firing), dtype=bool)
    was = False
    ended = -math.inf
    for i, (ti, now) in enumerate(zip(t.tolist(), firing.tolist(), strict=True)):
        if now and not was:
            out[i] = not (flap_seconds > 0 and ti - ended <= flap_seconds)
        elif was and not now:
            ended = ti
        was = now
    return out


def _score(x: float) -> str:
    s = f"{x:.4f}".rstrip("0").rstrip(".")
    return s or "0"


def backtest_csv(
    input_stream: IO[str],
    output_stream: IO[str],
    signal_kind: str | None = None,
    detector: str | None = None,
    flap_minutes: float = DEFAULT_FLAP_MINUTES,
    notices: IO[str] | None = None,
) -> int:
    """Read the CSV history, run the detector causally, write the verdicts as CSV.
    detector: a kind ('auto', 'seasonal', 'static:threshold=0.3', ...; see
    DetectorSpec.parse); default: the product's default for the signal kind.
    flap_minutes: the alerting's `flap_minutes` (0: every new firing episode pages).
    notices: where the one line about backward timestamps goes (the CLI's stderr).
    Returns the number of rows written. Raises BacktestError on bad input (nothing is
    written then) and on a bad detector, signal kind or flap window."""
    try:
        kind = SignalKind(signal_kind) if signal_kind else None
    except ValueError:
        known = ", ".join(k.value for k in SignalKind)
        raise BacktestError(None, f"unknown signal kind {signal_kind!r} (known: {known})") from None
    try:
        spec = spec_for(kind, detector)
    except ValueError as err:
        raise BacktestError(None, f"bad detector {detector!r}: {err}") from None
    if not (math.isfinite(flap_minutes) and flap_minutes >= 0):
        raise BacktestError(None, f"flap minutes must be 0 or more, got {flap_minutes!r}")
    history = read_csv(input_stream)
    clock = replay_clock(history.t)
    result = evaluate(spec, clock, history.value, history.volume)
    firing = alert_states(result.firing, result.anomalous, result.no_data)
    paged = pages(clock, firing, flap_minutes * 60.0)
    if history.backwards is not None and notices is not None:
        print(history.backwards.notice(), file=notices)
    out = csv.writer(output_stream, lineterminator="\n")
    out.writerow(["timestamp", "value", "score", "firing", "alert"])
    out.writerows(
        [r[0], r[1], _score(s), "1" if f else "0", "1" if a else "0"]
        for r, s, f, a in zip(
            history.rows, result.score.tolist(), firing.tolist(), paged.tolist(), strict=True
        )
    )
    return len(history.rows)
