"""The example GitHub Actions workflow passes actionlint."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKFLOW = Path(__file__).parent.parent / ".github" / "workflows" / "eval-gate.yml"


def test_workflow_passes_actionlint():
    binary = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    if not Path(binary).exists():
        pytest.fail("actionlint is not installed: pip install -e '.[dev]'")
    result = subprocess.run([binary, str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
