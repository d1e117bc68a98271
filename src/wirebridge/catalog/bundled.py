"""The model catalog bundled inside the user's own Codex binary, and the prompt it holds.

Codex's catalog entries must carry `base_instructions`, which replace Codex's own system prompt;
an entry without Codex's prompt leaves the model not knowing how to drive Codex's tools. That
prompt is Codex's, not ours to ship, so it is read at setup time from the binary the user
installed: the npm package's native binary embeds its catalog (`models.json`) as JSON, whose
entries hold the prompt (`base_instructions`, or `model_messages.instructions_template`).

`scan_catalogs` is pure (bytes in); `find_codex_binaries` and `read_bundled` touch the disk.
"""

from __future__ import annotations

import difflib
import json
import mmap
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_CATALOG_START = re.compile(rb'\{\s*"models"\s*:\s*\[\s*\{')
MAX_CATALOG_BYTES = 16 * 1024 * 1024
SHIM_MAX_BYTES = 1024 * 1024  # smaller than this, `codex` is the npm launcher, not the binary
NEAR_ENOUGH = 0.6  # difflib ratio above which a bundled slug counts as the same model family
BINARY_NAMES = ("codex", "codex.exe")

# Our own words, for a served catalog on a machine with no Codex to read the prompt from.
FALLBACK_INSTRUCTIONS = (
    "You are a coding agent working in the user's workspace through the tools you are given. "
    "Read files and run commands with the shell tool, change files with apply_patch, keep "
    "changes small and focused, and finish with a short summary of what you did."
)


class CodexNotFound(LookupError):
    """No Codex binary, or none with a readable bundled catalog."""


def scan_catalogs(data: bytes | mmap.mmap) -> list[dict[str, Any]]:
    """The entries of the first embedded `{"models": [...]}` JSON whose entries have slugs."""
    decoder = json.JSONDecoder()
    for match in _CATALOG_START.finditer(data):
        start = match.start()
        text = bytes(data[start : start + MAX_CATALOG_BYTES]).decode("utf-8", "replace")
        try:
            found, _ = decoder.raw_decode(text)
        except json.JSONDecodeError:
            continue
        models = found.get("models") if isinstance(found, dict) else None
        if isinstance(models, list) and models:
            entries = [m for m in models if isinstance(m, dict) and isinstance(m.get("slug"), str)]
            if entries and any(instructions_of(e) for e in entries):
                return entries
    return []


def instructions_of(entry: dict[str, Any]) -> str | None:
    """An entry's prompt: `base_instructions`, else `model_messages.instructions_template`."""
    text = entry.get("base_instructions")
    if isinstance(text, str) and text.strip():
        return text
    messages = entry.get("model_messages")
    template = messages.get("instructions_template") if isinstance(messages, dict) else None
    return template if isinstance(template, str) and template.strip() else None


def _priority(entry: dict[str, Any]) -> int:
    value = entry.get("priority")
    return value if isinstance(value, int) else 1_000_000


def nearest_entry(entries: Sequence[dict[str, Any]], model: str) -> dict[str, Any]:
    """The bundled entry for `model`: its own slug, else the most similar slug when similar
    enough, else Codex's own default (the first listed model by priority)."""
    usable = [e for e in entries if instructions_of(e)]
    if not usable:
        raise CodexNotFound("the bundled catalog has no entry with instructions")
    for entry in usable:
        if entry["slug"] == model:
            return entry
    wanted = model.lower()

    def similarity(entry: dict[str, Any]) -> float:
        return difflib.SequenceMatcher(None, wanted, entry["slug"].lower()).ratio()

    best = max(usable, key=lambda e: (similarity(e), -_priority(e)))
    if similarity(best) >= NEAR_ENOUGH:
        return best
    listed = [e for e in usable if e.get("visibility") == "list"] or usable
    return min(listed, key=_priority)


def _native_binaries(shim: Path) -> list[Path]:
    """The native binaries an npm `codex` launcher (bin/codex.js) starts, newest layouts first."""
    package = shim.parent.parent  # node_modules/@openai/codex
    patterns = [
        (package.parent, "codex-*/vendor/*/bin/codex*"),  # 0.1xx: per-platform packages
        (package, "node_modules/@openai/codex-*/vendor/*/bin/codex*"),
        (package, "vendor/*/codex/codex*"),  # older: one package with every platform
        (package, "vendor/*/bin/codex*"),
    ]
    found: list[Path] = []
    for base, pattern in patterns:
        found += sorted(p for p in base.glob(pattern) if p.name in BINARY_NAMES and p.is_file())
    return found


def find_codex_binaries(explicit: Path | None = None, path: str | None = None) -> list[Path]:
    """Candidate Codex binaries: `explicit`, else `codex` on PATH (through the npm launcher to
    the native binary it runs)."""
    if explicit is not None:
        start = explicit
    else:
        which = shutil.which("codex", path=path if path is not None else os.environ.get("PATH"))
        if which is None:
            return []
        start = Path(which)
    resolved = start.resolve()
    if not resolved.is_file():
        return []
    if resolved.stat().st_size < SHIM_MAX_BYTES:
        return _native_binaries(resolved)
    return [resolved]


def read_bundled(binary: Path) -> list[dict[str, Any]]:
    """The catalog entries bundled in `binary` ([] when it holds none)."""
    try:
        with binary.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return scan_catalogs(data)
    except (OSError, ValueError):
        return []


def bundled_catalog(explicit: Path | None = None) -> tuple[Path, list[dict[str, Any]]]:
    """The first candidate binary with a bundled catalog, and its entries; CodexNotFound names
    where it looked."""
    candidates = find_codex_binaries(explicit)
    for binary in candidates:
        entries = read_bundled(binary)
        if entries:
            return binary, entries
    where = str(explicit) if explicit is not None else "`codex` on PATH"
    if not candidates:
        raise CodexNotFound(
            f"no Codex binary found at {where}; install Codex (npm i -g @openai/codex) "
            "or pass --codex PATH"
        )
    looked = ", ".join(str(c) for c in candidates)
    raise CodexNotFound(f"no bundled model catalog found in {looked}")
