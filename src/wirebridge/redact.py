"""Secrets out of everything shown to a person: logs, errors, `providers` listings, stored URLs.

One home for every redaction rule, so that a header, a query parameter or a database password is
hidden the same way wherever it is shown. Pure string functions; nothing here logs or raises.

Two kinds of URL, two functions, because they are shown for different reasons:
- `redact_url`: an upstream endpoint. The userinfo is dropped (nobody needs it to find the
  server) and secret-looking query values become `***`.
- `redact_dsn`: a store URL. The user name stays (it says which role connects); the password,
  in the userinfo or a `password=` parameter, becomes `***`.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "openai-api-key", "cookie"}
)
SECRET_PARAM_HINTS = ("key", "token", "secret", "sig", "password")
MASK = "***"
MIN_SECRET_LEN = 4  # a 1-3 character "secret" would shred the text and hide nothing

_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")


def is_secret_param(name: str) -> bool:
    return any(hint in name.lower() for hint in SECRET_PARAM_HINTS)


def redact_params(params: Mapping[str, str]) -> dict[str, str]:
    """Query parameters safe to show: secret-looking values replaced by `***`."""
    return {k: MASK if is_secret_param(k) else v for k, v in params.items()}


def redact_headers(
    headers: Mapping[str, str], secret_names: Iterable[str] = frozenset()
) -> dict[str, str]:
    """Headers safe to log: credentials and env-sourced values replaced by `***`."""
    lowered = {n.lower() for n in secret_names}
    return {
        name: MASK if name.lower() in SECRET_HEADERS or name.lower() in lowered else value
        for name, value in headers.items()
    }


def redact_url(url: str, params: Mapping[str, str] | None = None) -> str:
    """An endpoint URL safe to log: no userinfo, secret-looking query values replaced."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    pairs += list((params or {}).items())
    shown = [(k, MASK if is_secret_param(k) else v) for k, v in pairs]
    query = urllib.parse.urlencode(shown, safe="*")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_dsn(url: str) -> str:
    """A database URL with any password (in the userinfo or a `password=` parameter) replaced.

    Conservative on purpose: the userinfo ends at the last `@` before the query, so a password
    holding an unescaped `@` or `/` is still hidden whole.
    """
    scheme, sep, rest = url.partition("://")
    if sep:
        head, qmark, query = rest.partition("?")
        userinfo, at, tail = head.rpartition("@")
        if at and ":" in userinfo:
            head = userinfo.split(":", 1)[0] + ":" + MASK + "@" + tail
        url = scheme + sep + head + qmark + query
    return _QUERY_PASSWORD.sub(r"\1" + MASK, url)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by `***` (belt and braces for debug lines)."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET_LEN:
            text = text.replace(secret, MASK)
    return text
