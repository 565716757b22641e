"""`release-gate judge --input FILE`: one JSON verdict on stdout, exit 0; bad input is
named on stderr, exit 2, nothing on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from release_gate.cli import main
from tests.release_gate.test_judge import counts


def invoke(*args: str, stdin: str | bytes | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["judge", *args], input=stdin)


def write(tmp_path: Path, payload: object, name: str = "samples.json") -> str:
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return str(path)


def test_rollback_verdict_as_json(tmp_path: Path) -> None:
    path = write(tmp_path, {"canary": counts(20, 0.10), "control": counts(180, 0.005)})
    result = invoke("--input", path)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["decision"] == "rollback"
    assert out["decided_at"] <= 15
    assert out["reason"]
    ev = out["evidence"]["error_rate"]
    assert ev["canary_errors"] > 0 and ev["rollback_e_value"] >= ev["rollback_threshold"]
    assert set(out["evidence"]) >= {"error_rate", "signatures", "latency", "config"}
    assert result.stderr == ""


def test_promote_from_standard_input() -> None:
    payload = json.dumps({"canary": counts(20, 0.005), "control": counts(180, 0.005)})
    result = invoke("--input", "-", stdin=payload)
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert out["decision"] == "promote"
    assert out["evidence"]["error_rate"]["ruled_out_ratio"] <= 2


def test_the_minimal_documented_input(tmp_path: Path) -> None:
    result = invoke("--input", write(tmp_path, {
        "canary": [{"t": 0, "requests": 0, "errors": 0}], "control": []}))
    assert result.exit_code == 0
    assert json.loads(result.stdout)["decision"] == "inconclusive"


def test_replaying_cut_at_decided_at_gives_the_same_decision(tmp_path: Path) -> None:
    data = {"canary": counts(20, 0.012), "control": counts(180, 0.005)}
    first = json.loads(invoke("--input", write(tmp_path, data)).stdout)
    at = first["decided_at"]
    cut = {side: [s for s in samples if s["t"] <= at] for side, samples in data.items()}
    again = json.loads(invoke("--input", write(tmp_path, cut, "cut.json")).stdout)
    assert (again["decision"], again["decided_at"]) == (first["decision"], at)


def test_settings_file_changes_the_thresholds(tmp_path: Path) -> None:
    data = write(tmp_path, {"canary": counts(2, 0.005), "control": counts(18, 0.005)})
    assert json.loads(invoke("--input", data).stdout)["decision"] == "inconclusive"
    config = tmp_path / "judge.yaml"
    config.write_text("max_regression: 4\nmin_canary_requests: 100\nmin_control_requests: 100\n")
    out = json.loads(invoke("--input", data, "--config", str(config)).stdout)
    assert out["decision"] == "promote"
    assert out["evidence"]["config"]["max_regression"] == 4


@pytest.mark.parametrize("payload, expected", [
    ("{\"canary\": [", "not valid JSON"),
    ("", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ({"canary": []}, "control: Field required"),
    ({"canary": [{"t": 0, "requests": 5}], "control": []}, "canary[0].errors: Field required"),
    ({"canary": [{"t": 0, "requests": 5, "errors": 1}, {"t": 5, "requests": 3, "errors": 9}],
      "control": []}, "canary[1]: Value error, errors (9) exceed requests (3)"),
    ({"canary": [], "control": [{"t": -1, "requests": 0, "errors": 0}]},
     "control[0].t: Input should be greater than or equal to 0"),
    ({"canary": [{"t": 10, "requests": 0, "errors": 0}, {"t": 5, "requests": 0, "errors": 0}],
      "control": []}, "samples must be in time order"),
    ({"canary": [{"t": 0, "requests": 1.5, "errors": 0}], "control": []},
     "canary[0].requests"),
    ({"canary": [{"t": 0, "requests": 1, "errors": 0, "latency": 3}], "control": []},
     "canary[0].latency: Extra inputs are not permitted"),
])
def test_bad_input_is_named_on_stderr_with_exit_2(tmp_path: Path, payload: object,
                                                  expected: str) -> None:
    result = invoke("--input", write(tmp_path, payload))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert expected in result.stderr
    assert "samples.json" in result.stderr


def test_bad_settings_file_names_line_and_field(tmp_path: Path) -> None:
    data = write(tmp_path, {"canary": [], "control": []})
    config = tmp_path / "judge.yaml"
    config.write_text("alpha: 0.01\nmax_regression: 0.5\n")
    result = invoke("--input", data, "--config", str(config))
    assert result.exit_code == 2 and result.stdout == ""
    assert "judge.yaml:2: max_regression" in result.stderr


def test_binary_input_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "samples.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    result = invoke("--input", str(path))
    assert result.exit_code == 2 and result.stdout == ""


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("release-gate")
    path = write(tmp_path, {"canary": counts(20, 0.10, until=30),
                            "control": counts(180, 0.005, until=30)})
    done = subprocess.run([str(script), "judge", "--input", path], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["decision"] == "rollback"
    bad = subprocess.run([str(script), "judge", "--input", "-"], input="{", capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and bad.stdout == "" and "not valid JSON" in bad.stderr
