"""The document-translation service the platform watches."""

__version__ = "1.0.0"
