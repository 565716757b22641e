"""Uploaded documents: formats, storage on disk, upload limits."""
