from tests.sources.conftest import translator_node  # noqa: F401  (a live translator)
