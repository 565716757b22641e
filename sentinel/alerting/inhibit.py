"""Inhibition: a firing cause mutes its symptoms ("database down" mutes "payments
failing" on the same service). Pure; the caller passes the alerts that are firing.

Alertmanager's semantics (``inhibit/inhibit.go``):

* a rule applies to an alert its ``target_matchers`` select, when some firing alert
  selected by ``source_matchers`` has the same values for every label in ``equal``
  (a label missing on both sides counts as equal, as in Alertmanager);
* an alert that matches both sides is never muted by a source that also matches both
  sides, so an alert cannot mute itself and two peers cannot mute each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, field_validator

from sentinel.alerting.matchers import Matcher, MatcherList, matches_all

__all__ = ["InhibitRule", "describe_alert", "inhibited_by"]

# Labels that name an alert: Alertmanager's, then the sentinel's own.
NAME_LABELS = ("alertname", "signal")


class InhibitRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    source_matchers: MatcherList
    target_matchers: MatcherList
    equal: list[str] = []

    @field_validator("source_matchers", "target_matchers")
    @classmethod
    def _not_empty(cls, value: list[Matcher]) -> list[Matcher]:
        # An empty side would select every alert: mute everything, or be muted by anything.
        if not value:
            raise ValueError('at least one matcher is needed, like signal="database.down"')
        return value

    @field_validator("equal")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        for label in value:
            if not label.strip():
                raise ValueError("equal lists label names; a blank name is not one")
        return value

    def mutes(self, target: Mapping[str, str], source: Mapping[str, str]) -> bool:
        """Whether the firing ``source`` alert mutes ``target`` under this rule."""
        if not matches_all(self.target_matchers, target):
            return False
        if not matches_all(self.source_matchers, source):
            return False
        if any(source.get(label, "") != target.get(label, "") for label in self.equal):
            return False
        two_sided = matches_all(self.source_matchers, target)
        return not (two_sided and matches_all(self.target_matchers, source))

    def describe(self) -> str:
        if self.name:
            return self.name
        source = ",".join(map(str, self.source_matchers))
        target = ",".join(map(str, self.target_matchers))
        return f"{{{source}}} mutes {{{target}}}" + (
            f" on equal {','.join(self.equal)}" if self.equal else ""
        )


def inhibited_by(
    target_labels: Mapping[str, str],
    firing: Iterable[Mapping[str, str]],
    rules: Sequence[InhibitRule],
) -> tuple[InhibitRule, Mapping[str, str]] | None:
    """The first rule (in order) and the firing alert that mute ``target_labels``, or
    None. ``firing`` are the label sets of the alerts firing now; resolved, pending
    and silenced alerts should not be in it."""
    sources = list(firing)  # may be a generator; every rule looks at all of them
    for rule in rules:
        if not matches_all(rule.target_matchers, target_labels):
            continue
        for source in sources:
            if rule.mutes(target_labels, source):
                return rule, source
    return None


def describe_alert(labels: Mapping[str, str], shown: Sequence[str] | None = None) -> str:
    """``database.down{service=payments}``: the alert's name and its other labels
    (only ``shown`` ones if given), for "muted by ..." lines."""
    name = next((labels[k] for k in NAME_LABELS if labels.get(k)), "alert")
    keys = [k for k in (shown if shown is not None else sorted(labels)) if k in labels]
    rest = [f"{k}={labels[k]}" for k in keys if k not in NAME_LABELS]
    return name + (f"{{{','.join(rest)}}}" if rest else "")
