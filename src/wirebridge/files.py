"""Writing a user's file without ever leaving it half written (config.toml, Codex's catalog)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ConfigError


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step (created with its folders if missing)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            if path.exists():
                os.chmod(tmp, path.stat().st_mode & 0o777)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc}") from exc
