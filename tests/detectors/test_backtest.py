"""`sentinel backtest`: the CSV interface CI and operators script against."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import numpy as np
import pytest

from sentinel.detectors import BacktestError, backtest_csv
from tests.detectors.synth import T0, seasonal_counts


def run_csv(text: str, **kwargs) -> list[list[str]]:
    out = io.StringIO()
    n = backtest_csv(io.StringIO(text), out, **kwargs)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["timestamp", "value", "score", "alert"]
    assert n == len(rows) - 1
    return rows[1:]


def history_csv(iso: bool = False, spike_at: int | None = None) -> str:
    t, v, _ = seasonal_counts(10, 300.0, peak=50.0, seed=21)
    v = v.copy()
    if spike_at is not None:
        v[spike_at] = 10 * v[spike_at] + 300
    lines = ["timestamp,value"]
    for i, (a, b) in enumerate(zip(t, v, strict=True)):
        ts = (
            datetime.fromtimestamp(a, UTC).isoformat().replace("+00:00", "Z") if iso else f"{a:.0f}"
        )
        lines.append(f"{ts},{'' if i % 97 == 5 else f'{b:g}'}")
    return "\n".join(lines) + "\n"


def test_format_one_row_per_input_row_echoing_what_was_given() -> None:
    text = history_csv(iso=True, spike_at=2800)
    rows = run_csv(text)
    given = [line.split(",") for line in text.splitlines()[1:]]
    assert [r[:2] for r in rows] == given
    for _ts, _value, score, alert in rows:
        assert alert in ("0", "1")
        assert 0.0 <= float(score) <= 1.0
        assert len(score) <= 6  # compact: '0', '0.5', '0.9731'
    assert rows[5][1] == "" and rows[5][3] == "0"  # empty value = no data
    assert rows[2800][3] == "1"
    assert sum(r[3] == "1" for r in rows) < 20


def test_unix_and_iso_timestamps_give_the_same_verdicts() -> None:
    a = run_csv(history_csv(iso=False, spike_at=2800))
    b = run_csv(history_csv(iso=True, spike_at=2800))
    assert [r[2:] for r in a] == [r[2:] for r in b]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_causal_a_prefix_gives_the_same_rows(seed: int) -> None:
    text = history_csv(spike_at=2500)
    lines = text.splitlines()
    full = run_csv(text)
    rng = np.random.default_rng(seed)
    for cut in rng.integers(2, len(lines), 3):
        prefix = "\n".join(lines[:cut]) + "\n"
        assert run_csv(prefix) == full[: cut - 1]


def test_signal_kind_and_detector_options() -> None:
    text = "timestamp,value,volume\n" + "".join(
        f"{T0 + 60 * i:.0f},{0.5 if i == 3 else 0.01},{5 if i == 4 else 100}\n" for i in range(6)
    )
    rows = run_csv(text, signal_kind="ratio", detector="ratio:threshold=0.2")
    assert [r[3] for r in rows] == ["0", "0", "0", "1", "0", "0"]
    rows = run_csv(text, detector="static:threshold=0.2,direction=below")
    assert [r[3] for r in rows] == ["1", "1", "1", "0", "1", "1"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "empty input"),
        ("time,value\n1,2\n", 1, "expected the header 'timestamp,value'"),
        ("timestamp,value\n1,2\nyesterday,3\n", 3, "unparsable timestamp 'yesterday'"),
        ("timestamp,value\n1,2\n2,abc\n", 3, "unparsable value 'abc'"),
        ("timestamp,value\n10,2\n5,3\n", 3, "goes backwards"),
        ("timestamp,value\n1,2,3\n", 2, "expected 2 fields"),
        ("timestamp,value,volume\n1,0.5,many\n", 2, "unparsable volume"),
    ],
)
def test_bad_input_names_the_line(text: str, line: int, message: str) -> None:
    out = io.StringIO()
    with pytest.raises(BacktestError) as err:
        backtest_csv(io.StringIO(text), out)
    assert err.value.line == line
    assert message in str(err.value) and str(err.value).startswith(f"line {line}:")
    assert out.getvalue() == ""  # nothing half-written


def test_bad_options() -> None:
    with pytest.raises(BacktestError, match="unknown signal kind 'gauge'"):
        backtest_csv(io.StringIO("timestamp,value\n"), io.StringIO(), signal_kind="gauge")
    with pytest.raises(BacktestError, match="parameter 'threshold' is required"):
        backtest_csv(io.StringIO("timestamp,value\n"), io.StringIO(), detector="static")


def test_header_only_and_naive_iso_is_utc() -> None:
    assert run_csv("timestamp,value\n") == []
    rows = run_csv("\ufefftimestamp,value\n2024-01-01T00:00:00,1\n2024-01-01T00:01:00+00:00,2\n")
    assert [r[0] for r in rows] == ["2024-01-01T00:00:00", "2024-01-01T00:01:00+00:00"]
