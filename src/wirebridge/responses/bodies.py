"""Compressed request bodies: `Content-Encoding: zstd`, `gzip`, `deflate`, decoded under a cap.

Codex compresses its bodies with zstd (ChatGPT auth on the openai provider); other clients use
gzip. The body limit applies to the decoded size, and decoding stops as soon as it would pass
it: a small body that inflates to gigabytes (a zip bomb) costs the limit and no more, then 413.
Pure: bytes and header values in, bytes out, or an `ApiError`.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterable

import zstandard

from .errors import ApiError

READ_CHUNK = 64 * 1024


def content_codings(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """The `Content-Encoding` codings in the order they were applied (identity left out)."""
    codings: list[str] = []
    for name, value in headers:
        if name.lower() == b"content-encoding":
            codings += [c.strip().lower() for c in value.decode("latin-1").split(",")]
    return [c for c in codings if c and c != "identity"]


def decode_body(headers: Iterable[tuple[bytes, bytes]], raw: bytes, limit: int) -> bytes:
    """The body with every content coding undone, last applied first; at most `limit` bytes."""
    body = raw
    for coding in reversed(content_codings(headers)):
        decoder = _DECODERS.get(coding)
        if decoder is None:
            raise ApiError(
                415,
                f"Content-Encoding {coding!r} is not supported; send zstd, gzip, deflate or "
                "an uncompressed body",
                code="unsupported_content_encoding",
            )
        try:
            body = decoder(body, limit)
        except ApiError:
            raise
        except (zlib.error, zstandard.ZstdError, EOFError) as exc:
            raise ApiError.invalid(
                f"the request body is not valid {coding} data ({exc})", code="invalid_body"
            ) from None
    return body


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"request body is larger than the bridge's limit of {limit} bytes (--max-body-bytes) "
        "once decompressed",
        code="request_too_large",
    )


def _zlib(body: bytes, limit: int, wbits: int) -> bytes:
    out = bytearray()
    data = body
    while True:
        inflater = zlib.decompressobj(wbits)
        while not inflater.eof:
            chunk = inflater.decompress(data, limit + 1 - len(out))
            out += chunk
            if len(out) > limit:
                raise too_large(limit)
            data = inflater.unconsumed_tail
            if not chunk and not data:
                break  # the input is used up
        if not inflater.eof:
            raise zlib.error("the data ends early")
        data = inflater.unused_data
        if not data or wbits != 16 + zlib.MAX_WBITS:  # gzip may hold several members
            return bytes(out)


def _gzip(body: bytes, limit: int) -> bytes:
    return _zlib(body, limit, 16 + zlib.MAX_WBITS)


def _deflate(body: bytes, limit: int) -> bytes:
    # HTTP's "deflate" is zlib-wrapped; some clients send raw deflate: take either.
    try:
        return _zlib(body, limit, zlib.MAX_WBITS)
    except zlib.error:
        return _zlib(body, limit, -zlib.MAX_WBITS)


def _zstd(body: bytes, limit: int) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body), read_across_frames=True)
    out = bytearray()
    while True:
        chunk = reader.read(min(READ_CHUNK, limit + 1 - len(out)))
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > limit:
            raise too_large(limit)


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    "zstd": _zstd,
}
