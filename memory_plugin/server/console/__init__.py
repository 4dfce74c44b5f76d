"""The web console: static files (HTML, CSS, JavaScript modules) served at ``/console`` by the memory server.

The console holds no data path of its own: the page signs in with an access key (kept in the tab's
``sessionStorage`` only), signs every request with it and calls the same ``/v1`` API as any client, so the key's
app and tenant bounds hold in every view. Every asset ships in this package (no CDN, no build step).

The files are sent with a strict Content-Security-Policy (only this origin's scripts, styles and API; no inline
script, no framing), so a memory's text, which the page renders as text, cannot become code either way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "static"
PATH = "/console"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # a new server version's files are picked up at once
}


class ConsoleFiles(StaticFiles):
    """The console's files, each with :data:`SECURITY_HEADERS`."""

    def file_response(self, full_path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(full_path, *args, **kwargs)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_console(app: FastAPI) -> None:
    """Serve the console at ``/console/`` (``/console`` redirects there)."""

    @app.get(PATH, include_in_schema=False)
    async def console_root() -> Response:
        return RedirectResponse(f"{PATH}/")

    app.mount(PATH, ConsoleFiles(directory=ASSETS, html=True), name="console")
