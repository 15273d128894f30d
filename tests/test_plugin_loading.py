"""pytester is the harness's own test tool: a user's `pytest evals` does not load it, `pytest tests` does."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(("folder", "loaded"), [("evals", False), ("tests", True)])
def test_pytester_only_for_the_harness_tests(folder, loaded):
    out = subprocess.run([sys.executable, "-m", "pytest", folder, "--fixtures", "-q", "-p", "no:cacheprovider"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    fixtures = {line.split()[0] for line in out.stdout.splitlines() if line and not line[0].isspace()}
    assert ("pytester" in fixtures) is loaded
