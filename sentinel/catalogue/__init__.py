"""The signal catalogue: what the sentinel watches, how, and whom it tells."""

from sentinel.catalogue.loader import load_catalogue
from sentinel.catalogue.models import Catalogue, NoDataPolicy, Severity, SignalSpec

__all__ = ["Catalogue", "NoDataPolicy", "Severity", "SignalSpec", "load_catalogue"]
