"""The last `wirebridge doctor` findings, kept for the console: `$WIREBRIDGE_HOME/doctor.json`.

Written by every doctor run (never failing it), read by the console's overview. The base URL
is stored redacted, like everything shown.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ..home import wirebridge_home
from ..redact import redact_url

DOCTOR_FILE = "doctor.json"
log = logging.getLogger("wirebridge.doctor")


def findings_path() -> Path:
    return wirebridge_home() / DOCTOR_FILE


def save_findings(document: dict[str, Any], path: Path | None = None) -> None:
    """Keep a doctor run's JSON document (atomically); a failure is logged, not raised."""
    target = path or findings_path()
    kept = {**document, "saved_at": time.time()}
    if isinstance(kept.get("base_url"), str):
        kept["base_url"] = redact_url(kept["base_url"])
    kept.pop("probes", None)  # the answers themselves stay with the person who ran it
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".doctor-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(kept, f, ensure_ascii=False, indent=1)
        os.replace(tmp, target)
    except OSError as exc:
        log.warning("could not keep the findings for the console in %s: %s", target, exc)
