"""The demo's platform identities. The first start of the store makes the admin
(its token printed once, or VIGIL_ADMIN_TOKEN's), as any install's does; the
demo then speaks through accounts of its own, each run with fresh tokens: a
release pipeline (release manager) whose name is the releases' author, a viewer
for the curl commands it prints, and the on-call person of the example
schedules (a responder) to acknowledge pages as."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from common.identity import AccountKind, IdentityError, IdentityStore, Role

PIPELINE = "ci-demo-releases"
VIEWER = "demo-viewer"
ON_CALL = "sysadmin-1"  # a person of sentinel/alerting/examples/alerting.yaml


@dataclass(frozen=True)
class DemoTokens:
    pipeline: str
    viewer: str
    on_call: str


def demo_tokens(store: IdentityStore) -> DemoTokens:
    def token(name: str, role: Role, kind: AccountKind) -> str:
        with contextlib.suppress(IdentityError):  # made by an earlier run
            store.create_account(name, role, kind)
        return store.issue_token(name, "demo run")

    return DemoTokens(
        pipeline=token(PIPELINE, Role.release_manager, AccountKind.service),
        viewer=token(VIEWER, Role.viewer, AccountKind.person),
        on_call=token(ON_CALL, Role.responder, AccountKind.person),
    )
