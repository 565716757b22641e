"""`sentinel backtest`: the CSV interface CI and operators script against."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from click.testing import CliRunner

from sentinel.alerting.config import AlertingConfig
from sentinel.alerts import Step, decide
from sentinel.catalogue.models import NoDataPolicy
from sentinel.cli import main
from sentinel.detectors import BacktestError, Verdict, backtest_csv
from sentinel.detectors.backtest import DEFAULT_FLAP_MINUTES, alert_states
from sentinel.models import AlertState
from tests.detectors.synth import T0, seasonal_counts

HEADER = ["timestamp", "value", "score", "firing", "alert"]


def run_csv(text: str, **kwargs) -> list[list[str]]:
    out = io.StringIO()
    n = backtest_csv(io.StringIO(text), out, **kwargs)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == HEADER
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
    for _ts, _value, score, firing, alert in rows:
        assert firing in ("0", "1") and alert in ("0", "1")
        assert alert == "0" or firing == "1"  # a page goes out only while firing
        assert 0.0 <= float(score) <= 1.0
        assert len(score) <= 6  # compact: '0', '0.5', '0.9731'
    assert rows[5][1] == "" and rows[5][3] == "0"  # empty value = no data
    assert rows[2800][3:] == ["1", "1"]  # the spike fires and pages
    assert sum(r[4] == "1" for r in rows) < 5


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
    assert [r[4] for r in rows] == ["1", "0", "0", "0", "0", "0"]  # one minute apart: a flap
    rows = run_csv(text, detector="static:threshold=0.2,direction=below", flap_minutes=0)
    assert [r[4] for r in rows] == ["1", "0", "0", "0", "1", "0"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "empty input"),
        ("time,value\n1,2\n", 1, "expected the header 'timestamp,value'"),
        ("timestamp,value\n1,2\nyesterday,3\n", 3, "unparsable timestamp 'yesterday'"),
        ("timestamp,value\n1,2\n2,abc\n", 3, "unparsable value 'abc'"),
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
    with pytest.raises(BacktestError, match="flap minutes must be 0 or more"):
        backtest_csv(io.StringIO("timestamp,value\n"), io.StringIO(), flap_minutes=-1)


def test_header_only_and_naive_iso_is_utc() -> None:
    assert run_csv("timestamp,value\n") == []
    rows = run_csv("\ufefftimestamp,value\n2024-01-01T00:00:00,1\n2024-01-01T00:01:00+00:00,2\n")
    assert [r[0] for r in rows] == ["2024-01-01T00:00:00", "2024-01-01T00:01:00+00:00"]


# --- file order, backward timestamps --------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
DST_START = datetime(2024, 10, 18, tzinfo=UTC)  # clocks go back on 2024-10-27 03:00 CEST


def dst_csv(spike_in_repeated_hour: bool = False) -> tuple[str, int, int]:
    """Ten days every 5 minutes in Berlin wall-clock time without a zone, so the hour
    02:00-02:59 of 2024-10-27 appears twice. Returns the text, the file line of the first
    row that goes backwards and the file line of the spike (in the second 02:xx hour)."""
    t0 = DST_START.timestamp()
    t, v, _ = seasonal_counts(10, 300.0, peak=50.0, seed=7)
    lines = ["timestamp,value"]
    first_back = spike = 0
    previous = ""
    for a, b in zip(t, v, strict=True):
        local = datetime.fromtimestamp(a - T0 + t0, UTC).astimezone(BERLIN)
        stamp = local.replace(tzinfo=None).isoformat()
        line = len(lines) + 1
        if previous and stamp < previous and not first_back:
            first_back = line
        if first_back and line == first_back + 5 and spike_in_repeated_hour:
            b, spike = 10 * b + 300, line
        lines.append(f"{stamp},{b:g}")
        previous = stamp
    return "\n".join(lines) + "\n", first_back, spike


def invoke(tmp_path, text: str, *options: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "history.csv"
    path.write_text(text)
    return CliRunner().invoke(main, ["backtest", "--csv", str(path), *options])


def test_a_repeated_dst_hour_is_replayed_in_file_order_and_reported_once(tmp_path) -> None:
    text, first_back, spike = dst_csv(spike_in_repeated_hour=True)
    result = invoke(tmp_path, text)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == HEADER
    given = [line.split(",") for line in text.splitlines()[1:]]
    assert [r[:2] for r in rows[1:]] == given  # every row, in file order
    notices = result.stderr.splitlines()
    assert len(notices) == 1
    assert "11 rows are older than a row before them (1 backward step;" in notices[0]
    assert f"line {first_back}, '2024-10-27T02:00:00' after '2024-10-27T02:55:00'" in notices[0]
    # a spike inside the repeated hour is judged and pages like any other
    assert rows[spike - 1][3:] == ["1", "1"]


def test_a_repeated_hour_alone_pages_nobody(tmp_path) -> None:
    text, first_back, _ = dst_csv()
    result = invoke(tmp_path, text)
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))[1:]
    around = rows[first_back - 2 - 24 : first_back - 2 + 36]  # two hours either side
    assert all(r[3] == "0" for r in around)
    assert len(result.stderr.splitlines()) == 1


def test_equal_times_pass_silently_and_every_backward_step_counts(tmp_path) -> None:
    stderr = io.StringIO()
    run_csv("timestamp,value\n1,1\n1,1\n2,1\n", notices=stderr)
    assert stderr.getvalue() == ""
    result = invoke(tmp_path, "timestamp,value\n10,2\n5,3\n6,3\n11,1\n3,1\n")
    assert result.exit_code == 0
    assert len(list(csv.reader(io.StringIO(result.stdout)))) == 6
    assert result.stderr.splitlines() == [
        "sentinel backtest: timestamps go backwards: 3 rows are older than a row before them "
        "(2 backward steps; the first at line 3, '5' after '10' on line 2); replayed in file "
        "order, the clock held at the latest time seen until the timestamps pass it"
    ]


@pytest.mark.parametrize("seed", [4, 5])
def test_causal_across_a_backward_stretch(seed: int) -> None:
    text, first_back, _ = dst_csv(spike_in_repeated_hour=True)
    lines = text.splitlines()
    full = run_csv(text)
    assert sum(r[4] == "1" for r in full) >= 1
    rng = np.random.default_rng(seed)
    cuts = [first_back - 1, first_back + 3, first_back + 20, *rng.integers(2, len(lines), 2)]
    for cut in cuts:
        assert run_csv("\n".join(lines[:cut]) + "\n") == full[: cut - 1]


# --- firing and pages -------------------------------------------------------------------


def minutes_csv(values: list[str]) -> str:
    return "timestamp,value\n" + "".join(
        f"{T0 + 60 * i:.0f},{x}\n" for i, x in enumerate(values)
    )


STATIC = "static:threshold=10"


def test_a_long_episode_is_one_page_and_two_episodes_are_two() -> None:
    values = ["0"] * 30 + ["50"] * 100 + ["0"] * 200 + ["50"] * 5 + ["0"] * 10
    rows = run_csv(minutes_csv(values), detector=STATIC)
    assert [r[3] for r in rows] == ["1" if x == "50" else "0" for x in values]
    assert [i for i, r in enumerate(rows) if r[4] == "1"] == [30, 330]


@pytest.mark.parametrize(("calm_minutes", "pages"), [(5, 1), (15, 1), (16, 2)])
def test_a_refire_within_the_flap_window_is_the_same_page(calm_minutes: int, pages: int) -> None:
    values = ["0"] * 3 + ["50"] * 10 + ["0"] * calm_minutes + ["50"] * 10 + ["0"] * 3
    rows = run_csv(minutes_csv(values), detector=STATIC)
    assert [r[3] for r in rows] == ["1" if x == "50" else "0" for x in values]  # two episodes
    assert sum(r[4] == "1" for r in rows) == pages
    assert rows[3][4] == "1"
    rows = run_csv(minutes_csv(values), detector=STATIC, flap_minutes=0)
    assert sum(r[4] == "1" for r in rows) == 2


def test_a_gap_in_the_data_keeps_the_alert_as_it_was() -> None:
    values = ["", "0", "50", "50", "", "", "50", "0", "", "0"]
    rows = run_csv(minutes_csv(values), detector=STATIC, flap_minutes=0)
    assert [r[3] for r in rows] == ["0", "0", "1", "1", "1", "1", "1", "0", "0", "0"]
    assert [r[4] for r in rows] == ["0", "0", "1", "0", "0", "0", "0", "0", "0", "0"]


def test_firing_follows_the_sentinels_alert_state_machine() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = 12
        firing = rng.random(n) < 0.4
        anomalous = firing | (rng.random(n) < 0.3)
        no_data = rng.random(n) < 0.2
        state: AlertState | None = None
        expected = []
        for f, a, nd in zip(firing.tolist(), anomalous.tolist(), no_data.tolist(), strict=True):
            verdict = Verdict(0.0, None, 0.0, a, f, nd, None, None, None, "")
            target = decide(state, Step(verdict, 0.0, NoDataPolicy.keep, 60.0))
            if target is not None:
                state = None if target in (AlertState.resolved, AlertState.cancelled) else target
            expected.append(state is AlertState.firing)
        assert alert_states(firing, anomalous, no_data).tolist() == expected


def test_the_flap_window_defaults_to_the_alertings() -> None:
    assert AlertingConfig.model_fields["flap_minutes"].default == DEFAULT_FLAP_MINUTES
    assert timedelta(minutes=DEFAULT_FLAP_MINUTES) == timedelta(seconds=900)


# --- the command ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: empty input"),
        ("1704067200,2\n1704067260,3\n", "line 1: expected the header 'timestamp,value'"),
        ("timestamp,value\n1704067200,2\n1704067260,3\n1704067320,high\n", "line 4: unparsable"),
    ],
)
def test_bad_input_fails_with_the_line_and_writes_nothing(tmp_path, text: str, message) -> None:
    result = invoke(tmp_path, text)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_bad_options_exit_non_zero(tmp_path) -> None:
    assert invoke(tmp_path, "timestamp,value\n", "--signal-kind", "gauge").exit_code == 1
    assert invoke(tmp_path, "timestamp,value\n", "--flap-minutes", "soon").exit_code == 2
    missing = CliRunner().invoke(main, ["backtest", "--csv", str(tmp_path / "missing.csv")])
    assert missing.exit_code == 2
