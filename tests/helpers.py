"""Builders shared by the translator tests."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from common.clock import FakeClock
from translator.accounts.models import UserRole
from translator.accounts.service import create_user
from translator.app import create_app
from translator.services import Services, build_services
from translator.settings import TranslatorSettings


def make_services(
    database_url: str, tmp_path: Path, clock: FakeClock, **overrides: Any
) -> Services:
    settings = TranslatorSettings(
        database_url=database_url,
        storage_dir=tmp_path / "files",
        backup_dir=tmp_path / "backups",
        workers=overrides.pop("workers", 0),
        scheduler_enabled=False,
        **overrides,
    )
    return build_services(settings, clock=clock, sleep=lambda _s: None, migrate=False)


def add_user(services: Services, email: str, admin: bool = False) -> tuple[int, dict[str, str]]:
    with services.db.session() as s:
        user, token = create_user(
            s, email, services.clock.now(), role=UserRole.admin if admin else UserRole.user
        )
        return user.id, {"Authorization": f"Bearer {token}"}


def client_for(services: Services, run_background: bool = False) -> TestClient:
    return TestClient(
        create_app(services, run_background=run_background), raise_server_exceptions=False
    )


def docx_bytes(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        t = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                t.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
