"""CI cannot pass with a tier skipped: tests/conftest.py's one skip-versus-fail decision.

A throw-away project holding a copy of tests/conftest.py (so ``../shared`` is
absent beside it) and a tiny test needing a module that does not exist runs
in a pytest subprocess twice: with ``CI=true`` it must FAIL naming what is
missing, without it it must skip with the same reason. And no test file may
decide by itself: the skip forms appear in tests/conftest.py only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import conftest

TESTS = Path(conftest.__file__).resolve().parent
NO_SUCH_MODULE = "ipsinfra_ci_gate_no_such_module"

GATE_TESTS = f'''
import pytest

from tests.conftest import require_module


@pytest.fixture(scope="module", autouse=True)
def _needs_the_module() -> None:
    require_module("{NO_SUCH_MODULE}", "pip install {NO_SUCH_MODULE}")


def test_needs_the_module() -> None:
    pass
'''

SHARED_TESTS = """
from pathlib import Path


def test_reads_shared_fixtures(shared_fixtures: Path) -> None:
    assert shared_fixtures.is_dir()
"""


TIER_TESTS = """
import os

import pytest

os.geteuid = lambda: 1000  # collected before the tier check: this process plays a non-root user


@pytest.mark.root
def test_needs_root() -> None:
    pass
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """``<tmp>/project/tests/{conftest,test_gate,test_shared,test_tier}.py``; no ``<tmp>/shared``."""
    root = tmp_path / "project"
    (root / "tests").mkdir(parents=True)
    (root / "pytest.ini").write_text(
        "[pytest]\naddopts = -ra --strict-markers\nmarkers =\n    root: needs root\n"
    )
    (root / "tests" / "__init__.py").write_text("")
    shutil.copy(TESTS / "conftest.py", root / "tests" / "conftest.py")
    (root / "tests" / "test_gate.py").write_text(GATE_TESTS)
    (root / "tests" / "test_shared.py").write_text(SHARED_TESTS)
    (root / "tests" / "test_tier.py").write_text(TIER_TESTS)
    assert not (tmp_path / "shared").exists()
    return root


def run_pytest(project: Path, *, ci: str | None, env: dict[str, str] | None = None) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"CI", "IPSINFRA_SHARED_FIXTURES", "PYTHONPATH"}}
    if ci is not None:
        clean["CI"] = ci
    clean.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(project), "tests"],
        cwd=project,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("ci", ["true", "YES"])
def test_on_ci_a_missing_module_shared_fixtures_or_root_fail_with_their_reason(
    project: Path, ci: str
) -> None:
    rc, out = run_pytest(project, ci=ci)

    assert rc == 1, out  # all fail in setup (a module fixture, shared_fixtures, the tier): errors
    assert "3 errors" in out and "skipped" not in out and "passed" not in out, out
    assert f"CI must run every tier, but: module '{NO_SUCH_MODULE}' cannot be imported" in out, out
    assert f"pip install {NO_SUCH_MODULE}" in out, out
    shared = project.parent / "shared" / "fixtures"
    assert f"CI must run every tier, but: {shared} is absent" in out, out
    assert "CI must run every tier, but: tier 'root' needs root" in out, out


@pytest.mark.parametrize("ci", [None, "0"])
def test_off_ci_the_same_conditions_skip_with_the_same_reason(project: Path, ci: str | None) -> None:
    rc, out = run_pytest(project, ci=ci)

    assert rc == 0, out
    assert "3 skipped" in out and "failed" not in out and "error" not in out, out
    assert f"SKIPPED [1] tests/test_gate.py:12: module '{NO_SUCH_MODULE}' cannot be imported" in out, out
    assert f"{project.parent / 'shared' / 'fixtures'} is absent" in out, out
    assert "tier 'root' needs root" in out, out


def test_the_shared_fixtures_location_can_be_overridden(project: Path, tmp_path: Path) -> None:
    there = tmp_path / "elsewhere"
    there.mkdir()
    rc, out = run_pytest(project, ci="true", env={"IPSINFRA_SHARED_FIXTURES": str(there)})
    assert rc == 1 and "1 passed, 2 errors" in out, out  # the module and root are missing now

    rc, out = run_pytest(project, ci="true", env={"IPSINFRA_SHARED_FIXTURES": str(tmp_path / "absent")})
    assert rc == 1 and f"{tmp_path / 'absent'} is absent" in out, out


# --- no test file decides skip-versus-fail by itself -------------------------------
# (the before-stop hook in ../shared/hooks greps for the module-level forms too)
# The patterns are split so this file does not match them itself.
SKIP_FORMS = re.compile(
    "|".join(
        [
            r"importor" + r"skip\(",
            r"pytest\.skip" + r"\(",
            r"mark\.skip" + r"(if)?\b",
            r"pytest\.xfail" + r"\(",
            r"except\s+" + r"AssertionError",
            r"environ(\.get\(|\[)\s*[\"']CI[\"']",  # a second skip-or-fail decision
        ]
    )
)


def test_no_test_file_skips_by_itself() -> None:
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        if path == TESTS / "conftest.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if SKIP_FORMS.search(line):
                found.append(f"{path.relative_to(TESTS.parent)}:{number}: {line.strip()}")
    assert found == [], "use tests/conftest.py's missing()/require*() instead:\n" + "\n".join(found)


def test_conftest_skips_only_through_missing() -> None:
    text = (TESTS / "conftest.py").read_text()
    assert len(re.findall(r"pytest\.skip\(", text)) == 1
    assert len(re.findall(r"pytest\.fail\(", text)) == 1
    assert not re.search(r"importor" + r"skip|mark\.skip", text)
