"""``python -m dashboards.console``: serve the console (settings from CONSOLE_*)."""

from __future__ import annotations

import uvicorn

from dashboards.console import ConsoleSettings, build_console

if __name__ == "__main__":
    settings = ConsoleSettings()
    uvicorn.run(build_console(settings), host=settings.host, port=settings.port)
