"""Loading the catalogue file, with errors that name the file, line and field."""

from __future__ import annotations

from pathlib import Path

from common.yaml_config import load_yaml_model
from sentinel.catalogue.models import Catalogue


def load_catalogue(path: str | Path) -> Catalogue:
    return load_yaml_model(path, Catalogue)
