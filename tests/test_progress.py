"""Progress lines reach the terminal while a test runs: serial, and from an xdist worker through the controller."""

from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.fixture
def project(pytester):
    pytester.makeini(f"[pytest]\npythonpath = {ROOT}\n")
    pytester.makeconftest('pytest_plugins = ["fixtures.options", "fixtures.plugin"]')
    pytester.makepyfile(test_slow='''
import time


def test_trains(progress):
    progress("training: step 1 of 2")
    time.sleep(2)  # longer than the controller's poll: the line must show before the test ends
    progress("training: step 2 of 2")


def test_other():
    pass
''')
    return pytester


def position(lines: list[str], needle: str) -> int:
    hits = [i for i, line in enumerate(lines) if needle in line]
    assert hits, f"{needle!r} not in the output:\n" + "\n".join(lines)
    return hits[0]


def test_serial_run_prints_past_capture(project):
    result = project.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    lines = result.outlines
    assert position(lines, "[router] training: step 1 of 2") < position(lines, "PASSED")


@pytest.mark.parametrize("verbosity", ["-v", "-q"])
def test_a_worker_line_reaches_the_controller_while_the_test_runs(project, verbosity):
    result = project.runpytest_subprocess("-n", "2", verbosity, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    lines = result.outlines
    result.stdout.re_match_lines([r"\[router\] \[gw[01]\] training: step 1 of 2", r".*\[router\] \[gw[01]\] training: step 2 of 2"])
    if verbosity == "-v":
        assert position(lines, "training: step 1 of 2") < position(lines, "PASSED test_slow.py::test_trains")
    assert not list(project.path.glob("router-progress-*")), "the channel file lives in a temp folder, not the project"
