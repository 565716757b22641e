"""The on-call commands: acknowledge and silence from a terminal, who is on
call, and a clear error for a broken alerting file."""

from __future__ import annotations

from click.testing import CliRunner

from common.identity import Role
from sentinel.cli import main
from tests.identity import account


def _run(monkeypatch, url, *args):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SENTINEL_DATABASE_URL", url)
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_acknowledge_from_the_terminal_stops_the_page(rig, monkeypatch, sentinel_url):
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    (group,) = rig.groups()
    # The one who acts is the account of VIGIL_TOKEN, not a name typed in.
    monkeypatch.setenv("VIGIL_TOKEN", account("alice", Role.responder))
    spoof = _run(monkeypatch, sentinel_url, "ack", str(group.id), "--by", "bob")
    assert spoof.exit_code == 1 and "--by bob is not VIGIL_TOKEN's account (alice)" in spoof.output
    out = _run(monkeypatch, sentinel_url, "ack", str(group.id))
    assert out.exit_code == 0 and "acknowledged (by alice)" in out.output
    listed = _run(monkeypatch, sentinel_url, "groups")
    assert "acknowledged" in listed.output and "by alice" in listed.output
    missing = _run(monkeypatch, sentinel_url, "ack", "999")
    assert missing.exit_code == 1 and "no alert group 999" in missing.output


def test_a_terminal_action_wants_a_responder_or_a_name(rig, monkeypatch, sentinel_url):
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    (group,) = rig.groups()
    monkeypatch.setenv("VIGIL_TOKEN", account("vic", Role.viewer))
    viewer = _run(monkeypatch, sentinel_url, "resolve", str(group.id))
    assert viewer.exit_code == 1 and "vic is a viewer; this needs responder" in viewer.output
    # Without a token, whoever reaches the database names themselves.
    monkeypatch.delenv("VIGIL_TOKEN")
    nameless = _run(monkeypatch, sentinel_url, "resolve", str(group.id))
    assert nameless.exit_code == 2 and "give --by NAME, or set VIGIL_TOKEN" in nameless.output
    named = _run(monkeypatch, sentinel_url, "resolve", str(group.id), "--by", "carol")
    assert named.exit_code == 0 and "resolved (by carol)" in named.output


def test_silences_from_the_terminal(monkeypatch, sentinel_url):
    added = _run(
        monkeypatch,
        sentinel_url,
        "silence",
        "add",
        'service="translator"',
        "--for",
        "2h",
        "--comment",
        "deploy",
    )
    assert added.exit_code == 0 and added.output.startswith("silence 1:")
    assert 'service="translator"' in _run(monkeypatch, sentinel_url, "silence", "list").output
    bad = _run(
        monkeypatch,
        sentinel_url,
        "silence",
        "add",
        "x",
        "--for",
        "2h",
        "--comment",
        "c",
    )
    assert bad.exit_code == 1 and "bad matcher 'x'" in bad.output
    duration = _run(
        monkeypatch,
        sentinel_url,
        "silence",
        "add",
        "a=b",
        "--for",
        "soon",
        "--comment",
        "c",
    )
    assert duration.exit_code == 2 and "expected a duration" in duration.output
    assert _run(monkeypatch, sentinel_url, "silence", "expire", "1").exit_code == 0
    assert _run(monkeypatch, sentinel_url, "silence", "list").output == ""


def test_who_is_on_call_follows_the_seed_schedule(monkeypatch, sentinel_url):
    # Wednesday 15:00 Moscow time: business hours, the weekly sysadmin rotation.
    day = _run(monkeypatch, sentinel_url, "oncall", "--at", "2025-01-08T15:00+03:00")
    assert day.output.startswith("ops-primary: sysadmin-1 (business-hours)")
    night = _run(monkeypatch, sentinel_url, "oncall", "--at", "2025-01-08T23:00+03:00")
    assert "(nights-and-weekends)" in night.output


def test_a_broken_alerting_file_names_the_line_and_field(monkeypatch, sentinel_url, tmp_path):
    broken = tmp_path / "alerting.yaml"
    broken.write_text(
        "people:\n  alice: {phone: '555'}\npolicies:\n  p:\n    steps:\n"
        "      - notify: {people: [alice]}\n        channels: [voice]\n"
        "routes:\n  - {name: all, policy: missing}\n"
    )
    out = _run(monkeypatch, sentinel_url, "alerting", "check", str(broken))
    assert out.exit_code == 1
    assert f"{broken}:2: people.alice.phone" in out.output and "E.164" in out.output


def test_a_separate_deliver_process_sends_what_the_outbox_holds(
    rig, monkeypatch, sentinel_url, tmp_path
):
    monkeypatch.setenv("SENTINEL_OUTBOX_FILE", str(tmp_path / "outbox.jsonl"))
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    out = _run(monkeypatch, sentinel_url, "deliver", "--once")
    assert out.exit_code == 0 and out.output.strip().endswith("2 notifications attempted")
    assert "payments.failed{service=translator}" in out.output  # the console, without credentials
    assert {n.status.value for n in rig.notifications()} == {"sent"}
    assert len((tmp_path / "outbox.jsonl").read_text().splitlines()) == 2
