"""Cases a candidate is known to get wrong, per base model: run as strict expected failures."""

from __future__ import annotations

import json
from pathlib import Path

EXPECTATIONS = Path(__file__).parent.parent / "golden" / "expected_failures.json"


def known_failure(base_model: str, candidate: str, case_id: str, path: Path = EXPECTATIONS) -> str | None:
    """The documented reason when (base model, candidate, case) is expected to fail, else None."""
    if not path.is_file():
        return None
    table = json.loads(path.read_text(encoding="utf-8"))
    return table.get(base_model, {}).get(candidate, {}).get(case_id)
