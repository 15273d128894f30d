"""--junitxml keeps what the suite's tests record (issue #29 item 5): under xunit2, pytest's default, record_property
warns once per test and the properties are dropped; the project's ini sets junit_family = xunit1."""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).parent.parent


def project_junit_family() -> str:
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    return ini.get("junit_family", "xunit2")  # pytest's default when the key is absent


def test_recorded_properties_reach_the_junit_xml_without_a_warning(pytester):
    pytester.makeini(f"[pytest]\njunit_family = {project_junit_family()}\n")
    pytester.makepyfile(test_records="""
        def test_one(record_property):
            record_property("router_record", {"case_id": "fin_001", "exact": True})
    """)
    result = pytester.runpytest("--junitxml=junit.xml")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*record_property is incompatible with junit_family*")
    case = ET.parse(pytester.path / "junit.xml").getroot().find(".//testcase")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties == {"router_record": "{'case_id': 'fin_001', 'exact': True}"}
