"""The console's page and its static files, served from the package (nothing from a CDN:
users run the bridge offline).

They hold no data, so they are served without a key; the page asks for one, keeps it in the
browser's session storage and sends it with every call to the data API (`routes.py`), which
sits behind the bridge's keys like every other route. The content security policy lets the
page load nothing from anywhere but the bridge itself.
"""

from __future__ import annotations

import functools
from importlib import resources

from starlette.types import Send

STATIC_PREFIX = "/console/static/"
TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
}
CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@functools.cache
def asset(name: str) -> bytes | None:
    """A file of the `wirebridge.console` package by plain name, or None."""
    if "/" in name or name.startswith(".") or not any(name.endswith(t) for t in TYPES):
        return None
    path = resources.files("wirebridge.console").joinpath(name)
    return path.read_bytes() if path.is_file() else None


async def serve_static(path: str, send: Send) -> None:
    name = "index.html" if path == "/console" else path.removeprefix(STATIC_PREFIX)
    body = asset(name)
    if body is None:
        status, body, kind = 404, b"not found", b"text/plain; charset=utf-8"
    else:
        status, kind = 200, TYPES[name[name.rindex(".") :]]
    headers = [
        (b"content-type", kind),
        (b"content-length", b"%d" % len(body)),
        (b"content-security-policy", CSP),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-cache"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
