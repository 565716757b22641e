"""``python -m demo --short`` run twice in a row on the same var/, as a user
re-running ``bash scripts/demo.sh`` would: each run plays the whole story and
ends by itself once it is told. What each run did is read from the records the
components keep (the sentinel's, the gate's and postmortems' databases, the
outbox file), not from what the demo printed: every injected fault paged
someone and the page was acknowledged, the bad release was rolled back, and its
incident was closed with its postmortem and a detective action. The second run
starts from a clean var/ (the first is kept in var/last-run/)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from demo.faults import FAULTS
from tests.daemons import free_port

ROOT = Path(__file__).resolve().parent.parent
NGINX = "/usr/sbin/nginx"
# A safety net only: the short story is told in about a minute.
DURATION = 170
# What the narration shows a newcomer, in the order it happens.
STORY = ("ROLLBACK", "INCIDENT", "POSTMORTEM", "DETECTOR", "CLOSED", "FAULT", "ALERT", "PAGE")


class Demo:
    """One demo process in its own session (Ctrl-C goes to its whole group, as a
    terminal sends it), its output collected line by line."""

    def __init__(self, cwd: Path, *extra: str, short: bool = True) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TRANSLATOR_", "SENTINEL_", "GATE_", "POSTMORTEM_"))
        }
        env["PYTHONPATH"] = str(ROOT)
        command = [sys.executable, "-u", "-m", "demo", f"--duration={DURATION}"]
        command += ["--short"] if short else ["--history-days=1"]
        for option in ("--port", "--sentinel-port", "--postmortems-port", "--console-port"):
            command += [option, str(free_port())]
        self.process = subprocess.Popen(
            [*command, *extra],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the demo never showed {text!r}; its output:\n{self.output}")
            time.sleep(0.5)

    def finish(self, timeout: float) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            pytest.fail(f"the demo did not end within {timeout} s; its output:\n{self.output}")
        self.reader.join(10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def _rows(db: Path, query: str, *params: object) -> list[sqlite3.Row]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(query, params).fetchall()


def _assert_the_story_happened(var: Path) -> None:
    """From the records of the run in ``var``."""
    sentinel = var / "sentinel.db"
    outbox = {json.loads(line)["notification_id"] for line in (var / "outbox.jsonl").open()}
    for fault in FAULTS:
        alerts = _rows(
            sentinel,
            "SELECT id, group_id FROM alerts WHERE signal = ? AND series = ? "
            "AND firing_at IS NOT NULL",
            fault.signal,
            fault.series,
        )
        assert alerts, f"{fault.what}: no {fault.signal}{{{fault.series}}} alert fired"
        group_id = alerts[0]["group_id"]
        pages = _rows(
            sentinel,
            "SELECT key, channel, person FROM notifications WHERE group_id = ? "
            "AND status = 'sent' AND person IS NOT NULL",
            group_id,
        )
        assert any(p["key"] in outbox for p in pages), (fault.what, [dict(p) for p in pages])
        (group,) = _rows(
            sentinel, "SELECT state, acked_by, acked_at FROM alert_groups WHERE id = ?", group_id
        )
        assert group["state"] == "acknowledged" and group["acked_at"], (fault.what, dict(group))
        # Acknowledged by the person it reached, as themselves.
        assert group["acked_by"] in {p["person"] for p in pages}, dict(group)
        # One fault, one incident: its alerts on every signal land together (a
        # bad release's incident takes the alerts of its own canary window).
        placeholders = ", ".join("?" for _ in fault.also_raises)
        incidents = _rows(
            var / "postmortems.db",
            "SELECT DISTINCT a.incident_id FROM pm_incident_alerts a "
            "JOIN pm_incidents i ON i.id = a.incident_id WHERE i.release_id IS NULL "
            f"AND ((a.signal = ? AND a.series = ?) OR a.signal IN ({placeholders}))",
            fault.signal,
            fault.series,
            *fault.also_raises,
        )
        assert len(incidents) <= 1, (fault.what, [dict(i) for i in incidents])

    # Nothing else paged: no alert but the faults' own (a quiet half-hour is no fault).
    expected = {f.signal for f in FAULTS} | {s for f in FAULTS for s in f.also_raises}
    fired = {
        r["signal"]
        for r in _rows(sentinel, "SELECT signal FROM alerts WHERE firing_at IS NOT NULL")
    }
    assert fired <= expected, f"alerts that no fault explains: {fired - expected}"
    channels = {r["channel"] for r in _rows(sentinel, "SELECT channel FROM notifications")}
    assert {"voice", "sms"} <= channels, channels  # the call that wakes, the SMS to read

    (release,) = _rows(
        var / "release_gate.db",
        "SELECT id, status, decision FROM gate_releases WHERE version = '1.2.0'",
    )
    assert (release["status"], release["decision"]) == ("rolled_back", "rollback")

    postmortems = var / "postmortems.db"
    (incident,) = _rows(
        postmortems,
        "SELECT id, status, incident_class, closed_at FROM pm_incidents WHERE source_ref = ?",
        f"release:{release['id']}",
    )
    assert incident["status"] == "closed" and incident["closed_at"], dict(incident)
    (postmortem,) = _rows(
        postmortems,
        "SELECT complete, submitted_by FROM pm_postmortems WHERE incident_id = ?",
        incident["id"],
    )
    assert postmortem["complete"] and postmortem["submitted_by"], dict(postmortem)
    detective = _rows(
        postmortems,
        "SELECT signal, replay FROM pm_action_items WHERE incident_id = ? AND kind = 'detective'",
        incident["id"],
    )
    assert detective and detective[0]["signal"], [dict(d) for d in detective]
    assert "error" not in json.loads(detective[0]["replay"]), detective[0]["replay"]


def _assert_told(output: str) -> None:
    assert "Traceback" not in output, output
    assert "ended by the end of the story" in output, output
    positions = [output.find(f"] {tag} ") for tag in STORY]
    assert -1 not in positions, f"missing {STORY[positions.index(-1)]}:\n{output}"
    assert output.count("] ACK ") >= len(FAULTS), output
    assert positions == sorted(positions), output


@pytest.mark.slow
def test_the_short_story_twice_on_the_same_var_pages_acknowledges_rolls_back_and_closes(
    tmp_path: Path,
) -> None:
    if not os.path.exists(NGINX) and not shutil.which("nginx"):
        if os.environ.get("CI"):
            pytest.fail(f"nginx is missing at {NGINX}")
        pytest.skip(f"nginx is missing at {NGINX}: the demo's releases need it")
    var = tmp_path / "var"

    first = Demo(tmp_path)
    try:
        assert first.finish(timeout=DURATION + 60) == 0, first.output
    finally:
        first.kill()
    _assert_told(first.output)
    _assert_the_story_happened(var)
    first_run = (var / "sentinel.db").stat().st_size

    second = Demo(tmp_path)
    try:
        assert second.finish(timeout=DURATION + 60) == 0, second.output
    finally:
        second.kill()
    _assert_told(second.output)
    assert "previous run's state is in var/last-run" in second.output
    _assert_the_story_happened(var)
    # The second run's records are its own, numbered from 1; the first run's are kept.
    assert _rows(var / "release_gate.db", "SELECT MIN(id) AS id FROM gate_releases")[0]["id"] == 1
    assert (var / "last-run" / "sentinel.db").stat().st_size == first_run
    _assert_the_story_happened(var / "last-run")
    summary = second.output[second.output.index("=== Demo summary") :]
    assert "/incidents/1" in summary and "/releases/1" in summary and "/alerts/" in summary


@pytest.mark.slow
def test_ctrl_c_stops_the_demo_with_its_summary(tmp_path: Path) -> None:
    """Without --short nothing ends the demo but Ctrl-C (or --duration): it prints
    what happened so far."""
    demo = Demo(tmp_path, "--no-releases", "--fault-after=-1", short=False)
    try:
        demo.wait_for("traffic only (no releases, no faults)", timeout=60)
        os.killpg(demo.process.pid, signal.SIGINT)
        code = demo.finish(timeout=60)
    finally:
        demo.kill()
    assert code == 0, demo.output
    assert "ended by Ctrl-C" in demo.output and "Where to look:" in demo.output, demo.output
