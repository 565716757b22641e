"""The demo's platform identities. The first start of the store makes the admin
(its token printed once, or VIGIL_ADMIN_TOKEN's), as any install's does; the demo
then speaks through accounts of its own, each run with fresh tokens: a release
pipeline (release manager) whose name is the releases' author, a viewer for the
curl commands it prints, and people of the example alerting configuration
(responders): whoever a page reaches acknowledges it as themselves, and the
incident lead writes the postmortem."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field

from common.identity import AccountKind, IdentityError, IdentityStore, Role

PIPELINE = "ci-demo-releases"
VIEWER = "demo-viewer"
LEAD = "senior-ops-1"  # a person of sentinel/alerting/examples/alerting.yaml


@dataclass
class DemoTokens:
    store: IdentityStore
    pipeline: str
    viewer: str
    _people: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def person(self, name: str) -> str:
        """A responder token for ``name`` (made on first use): the person a page
        reached, or the incident lead, acting as themselves."""
        with self._lock:
            if name not in self._people:
                self._people[name] = _token(self.store, name, Role.responder, AccountKind.person)
            return self._people[name]


def demo_tokens(store: IdentityStore) -> DemoTokens:
    return DemoTokens(
        store=store,
        pipeline=_token(store, PIPELINE, Role.release_manager, AccountKind.service),
        viewer=_token(store, VIEWER, Role.viewer, AccountKind.person),
    )


def _token(store: IdentityStore, name: str, role: Role, kind: AccountKind) -> str:
    with contextlib.suppress(IdentityError):  # made by an earlier run
        store.create_account(name, role, kind)
    return store.issue_token(name, "demo run")
