"""pyproject.toml declares what the code imports (issue #30 item 4): every third-party module the suite's code
imports, lazily too, is in [project] dependencies; what only tests/ imports is there or in the `dev` extra; syrupy
(only tests/test_prompt_snapshots.py uses it) is a dev package; bitsandbytes has a `gpu` extra and stays in the core
dependencies, since the CPU imports it too (--cpu-4bit, and its version is part of every adapter key)."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).parent.parent
CODE = ("evals", "fixtures", "training", "reports")
LOCAL = {*CODE, "tests", "conftest"}
# Imported by code that another change adds, which declares it there.
DECLARED_ELSEWHERE: set[str] = set()


def name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement).group()).lower()


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def imported(folders) -> dict[str, str]:
    """{top-level module: a file importing it} over every import statement, inside functions too."""
    out: dict[str, str] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    out.setdefault(module.split(".")[0], str(path.relative_to(ROOT)))
    return out


def undeclared(modules: dict[str, str], declared: set[str]) -> dict[str, str]:
    """Installed third-party modules whose distribution is not declared (a module not installed here is optional)."""
    dists = packages_distributions()
    return {m: f"{where} ({', '.join(dists[m])})" for m, where in modules.items()
            if m not in LOCAL | DECLARED_ELSEWHERE and m not in sys.stdlib_module_names and m in dists
            and not {name(d) for d in dists[m]} & declared}


def test_every_module_the_code_imports_is_a_core_dependency():
    core = {name(r) for r in project()["dependencies"]}
    assert undeclared(imported(CODE), core) == {}


def test_every_module_the_tests_import_is_declared():
    extras = project()["optional-dependencies"]
    assert undeclared(imported(["tests"]), {name(r) for r in [*project()["dependencies"], *extras["dev"]]}) == {}


def test_test_only_plugins_are_dev_packages_and_bitsandbytes_has_a_gpu_extra():
    core = {name(r) for r in project()["dependencies"]}
    extras = {k: {name(r) for r in v} for k, v in project()["optional-dependencies"].items()}
    assert "syrupy" not in core and "syrupy" in extras["dev"]
    assert "bitsandbytes" in extras["gpu"] and "bitsandbytes" in core
    assert {"pytest", "pytest-xdist"} <= core  # the suite is run with pytest, `pytest evals -n 3` with xdist
