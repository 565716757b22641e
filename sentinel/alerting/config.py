"""The alerting configuration (YAML, ``SENTINEL_ALERTING``): people and how to
reach them, on-call schedules, escalation policies, routes, inhibition rules,
maintenance windows, rate limits and where release announcements go.

Everything a page depends on is checked when the file loads, with the file, the
line and the field: a route naming a missing policy, a step paging by phone a
person without a phone number, a schedule participant nobody can reach."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.yaml_config import ConfigError, load_yaml_model, parse_yaml_model
from sentinel.alerting.inhibit import InhibitRule
from sentinel.alerting.matchers import MatcherList
from sentinel.alerting.schedules import Schedule, load_schedule
from sentinel.alerting.silences import MaintenanceWindow

DEFAULT_CONFIG = Path(__file__).parent / "examples" / "alerting.yaml"

ChannelName = Literal["sms", "voice", "slack", "webhook", "console"]
PERSONAL_CHANNELS: dict[str, str] = {"sms": "phone", "voice": "phone", "slack": "slack"}
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")  # E.164


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Person(_Strict):
    name: str | None = None
    phone: str | None = None
    slack: str | None = None  # a Slack user id for direct messages

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is not None and not _PHONE.match(value):
            raise ValueError(f"phone must be in E.164 form like +74951234567, got {value!r}")
        return value

    def address(self, channel: str, person_id: str) -> str | None:
        """Where ``channel`` reaches this person (None: it cannot)."""
        attribute = PERSONAL_CHANNELS.get(channel)
        return person_id if attribute is None else getattr(self, attribute)


class Notify(_Strict):
    """Who a step pages: whoever is on call on the schedules, and named people."""

    schedules: list[str] = []
    people: list[str] = []

    @model_validator(mode="after")
    def _someone(self) -> Notify:
        if not self.schedules and not self.people:
            raise ValueError("a step must notify at least one schedule or person")
        return self


class EscalationStep(_Strict):
    notify: Notify
    # Tried in order for each person: the next one when a channel fails or is
    # not confirmed (SMS undelivered → call).
    channels: list[ChannelName] = Field(min_length=1)
    # Sent at once beside the first channel, never as its fallback: the SMS that
    # leaves the alert's text behind while the call wakes the person (SMS/IVR).
    also: list[ChannelName] = []
    wait_minutes: float = Field(default=5, gt=0)


class Broadcast(_Strict):
    """A shared destination: one message per group, updated as it changes."""

    channel: ChannelName
    to: str  # a Slack channel, a webhook URL name, or a console label


class Policy(_Strict):
    steps: list[EscalationStep] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0)  # run through the steps again this many times
    broadcast: list[Broadcast] = []


class Route(_Strict):
    name: str
    matchers: MatcherList = []
    policy: str
    group_by: list[str] = ["signal", "service"]
    group_wait_seconds: float = Field(default=30, ge=0)
    group_interval_seconds: float = Field(default=300, gt=0)
    # Alertmanager's alerts were grouped (and waited for) by Alertmanager already, so
    # they skip group_wait here unless this asks for it.
    alertmanager_group_wait: bool = False


class RateLimit(_Strict):
    """At most ``max`` messages per recipient per window; the rest go out as
    one bundle ("5 more alerts: ...") when the window allows."""

    max: int = Field(gt=0)
    per_minutes: float = Field(gt=0)


class Announcements(_Strict):
    broadcast: list[Broadcast] = []


class AlertingConfig(_Strict):
    people: dict[str, Person] = {}
    # Inline schedules, or the path of a schedule file (relative to this file).
    schedules: dict[str, Schedule | str] = {}
    policies: dict[str, Policy]
    routes: list[Route] = Field(min_length=1)
    inhibit_rules: list[InhibitRule] = []
    maintenance_windows: list[MaintenanceWindow] = []
    rate_limits: dict[ChannelName, RateLimit] = {}
    # A re-fire this soon after resolving reopens the same alert and group.
    flap_minutes: float = Field(default=15, ge=0)
    # A group resolved by hand while its alerts still fire pages again this long after,
    # saying it is still firing (0: never; it pages again only when it re-fires).
    repage_resolved_minutes: float = Field(default=60, ge=0)
    announcements: Announcements = Announcements()

    @model_validator(mode="after")
    def _references(self) -> AlertingConfig:
        problems: list[str] = []
        for route in self.routes:
            if route.policy not in self.policies:
                problems.append(f"route {route.name!r}: no policy {route.policy!r}")
        for name, policy in self.policies.items():
            for i, step in enumerate(policy.steps):
                for person in step.notify.people:
                    problems += self._reachability(name, i, person, step)
                for schedule in step.notify.schedules:
                    if schedule not in self.schedules:
                        problems.append(f"policy {name!r} step {i + 1}: no schedule {schedule!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _reachability(
        self, policy: str, index: int, person: str, step: EscalationStep
    ) -> list[str]:
        where = f"policy {policy!r} step {index + 1}"
        found = self.people.get(person)
        if found is None:
            return [f"{where}: no person {person!r} in people"]
        missing = [c for c in step.channels if found.address(c, person) is None]
        if missing and len(missing) == len(step.channels):
            return [f"{where}: {person!r} has no address for {', '.join(missing)}"]
        return []

    def policy_for(self, route: Route) -> Policy:
        return self.policies[route.policy]


def _resolve_schedules(config: AlertingConfig, base: Path | None) -> AlertingConfig:
    """Load schedule files, then check every participant can be paged."""
    for name, value in list(config.schedules.items()):
        if isinstance(value, str):
            path = Path(value) if base is None or Path(value).is_absolute() else base / value
            config.schedules[name] = load_schedule(path)
    problems = []
    for name, schedule in config.schedules.items():
        assert isinstance(schedule, Schedule)
        for person in _participants(schedule):
            if person not in config.people:
                problems.append(f"schedule {name!r}: participant {person!r} is not in people")
    if problems:
        raise ConfigError("; ".join(problems))
    return config


def _participants(schedule: Schedule) -> set[str]:
    people = {o.person for o in schedule.overrides}
    for layer in schedule.layers:
        people.update(layer.rotation.participants)
    return people


def schedule(config: AlertingConfig, name: str) -> Schedule:
    value = config.schedules[name]
    assert isinstance(value, Schedule), "schedules are loaded with the config"
    return value


def parse_alerting_config(
    text: str, source: str = "<string>", base: Path | None = None
) -> AlertingConfig:
    config = parse_yaml_model(text, AlertingConfig, source=source)
    return _resolve_schedules(config, base)


def load_alerting_config(path: str | Path | None = None) -> AlertingConfig:
    path = Path(path) if path is not None else DEFAULT_CONFIG
    config = load_yaml_model(path, AlertingConfig)
    try:
        return _resolve_schedules(config, path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
