"""Compaction tokens: what a token of ours carries, and what makes one unusable."""

from __future__ import annotations

import pytest

from wirebridge.errors import ConfigError
from wirebridge.responses.sealed import SECRET_ENV, Sealer, TokenError, load_secret


def test_a_token_round_trips_and_hides_nothing_it_should_not() -> None:
    sealer = load_secret("s" * 32)
    token = sealer.seal('summary ✓ with "quotes"\nand lines')
    assert token.startswith("wbc1.") and "s" * 32 not in token
    assert sealer.open(token) == 'summary ✓ with "quotes"\nand lines'


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # tag altered
        lambda t: "wbc1." + "e30" + "." + t.split(".")[2],  # payload swapped
        lambda t: t.replace("wbc1.", "wbc2."),  # unknown format
        lambda t: t.split(".")[0] + "." + t.split(".")[1],  # no tag
        lambda t: "wbc1.!!!.@@@",  # not base64
    ],
)
def test_an_altered_token_is_refused(mangle: object) -> None:
    sealer = Sealer(b"k" * 32, "test")
    token = sealer.seal("hello")
    with pytest.raises(TokenError):
        sealer.open(mangle(token))  # type: ignore[operator]


def test_another_secret_is_refused_saying_so() -> None:
    token = Sealer(b"a" * 32, "one").seal("hello")
    with pytest.raises(TokenError, match=SECRET_ENV):
        Sealer(b"b" * 32, "two").open(token)


def test_where_the_secret_comes_from() -> None:
    assert load_secret(None, {SECRET_ENV: "e" * 20}).source == SECRET_ENV
    assert load_secret("c" * 20, {SECRET_ENV: "e" * 20}).source == "configuration"
    first, second = load_secret(None, {}), load_secret(None, {})
    assert first.source == "random" and first.secret != second.secret
    with pytest.raises(ConfigError, match="shorter than 16 bytes"):
        load_secret(None, {SECRET_ENV: "short"})
