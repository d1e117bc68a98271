"""docs/design.md is the project's copy of the shared design (users have no ../shared).

Where ../shared/DESIGN.md exists beside the checkout, the copy must equal it, so a change upstream
makes this test fail until the copy is refreshed. The copy carries no local amendment today: the
shared P4 already says what is implemented (tool-call assistant messages carry NO `content` key),
and tests/test_rule_guards.py checks the implementation against that sentence.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COPY = ROOT / "docs" / "design.md"
SHARED = ROOT / ".." / "shared" / "DESIGN.md"


def test_design_copy_is_in_the_repository() -> None:
    text = COPY.read_text(encoding="utf-8")
    assert text.startswith("# wirebridge: design and contract")
    assert "## Behaviour rules" in text


def test_p4_says_tool_call_messages_carry_no_content_key() -> None:
    text = " ".join(COPY.read_text(encoding="utf-8").split())
    assert "with NO `content` key" in text


@pytest.mark.skipif(not SHARED.is_file(), reason="no ../shared/DESIGN.md beside this checkout")
def test_design_copy_matches_shared_design() -> None:
    ours = COPY.read_text(encoding="utf-8")
    shared = SHARED.read_text(encoding="utf-8")
    assert ours == shared, (
        "../shared/DESIGN.md changed: copy it to docs/design.md again (cp ../shared/DESIGN.md "
        "docs/design.md) and check the code and tests still follow it"
    )
