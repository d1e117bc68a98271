"""The project's copy of the conformance vectors must match the shared originals, when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import CONFORMANCE

SHARED = Path(__file__).resolve().parents[2] / "shared" / "conformance"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.json"))}


def test_project_copy_has_payload_and_stream_vectors() -> None:
    files = _files(CONFORMANCE)
    assert any(name.startswith("payload/") for name in files)
    assert any(name.startswith("stream/") for name in files)


@pytest.mark.skipif(not SHARED.is_dir(), reason="no ../shared/conformance beside this checkout")
def test_project_copy_matches_shared_vectors() -> None:
    shared, ours = _files(SHARED), _files(CONFORMANCE)
    assert sorted(ours) == sorted(shared), "vector files differ: copy ../shared/conformance again"
    changed = [name for name in shared if shared[name] != ours[name]]
    assert not changed, f"vectors changed upstream: {changed}"
