"""The project's declared dependencies are what its code imports, and the environment that
``scripts/setup.sh`` makes is whole: a module that arrives only as another package's
dependency, or only by hand, fails here rather than on a user's fresh machine."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
# The extras scripts/test.sh installs (scripts/setup.sh's default EXTRAS).
TESTED_EXTRAS = ("test", "lm", "onnx", "serve", "lhotse")


def _requirements(extras: tuple[str, ...]) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    raw = list(project["dependencies"])
    for extra in extras:
        raw += project["optional-dependencies"][extra]
    return [Requirement(r) for r in raw]


def test_deptry_finds_no_undeclared_transitive_or_unused_dependency() -> None:
    # deptry reads [tool.deptry] in pyproject.toml: tests/ and scripts/ are scanned as asr/ is.
    deptry = shutil.which("deptry", path=str(Path(sys.executable).parent)) or shutil.which("deptry")
    assert deptry, "deptry is not installed (it is in the test extra: pip install -e '.[test]')"
    run = subprocess.run([deptry, "."], cwd=REPO, capture_output=True, text=True, env={"NO_COLOR": "1", "PATH": ""},
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("requirement", _requirements(TESTED_EXTRAS), ids=str)
def test_every_declared_requirement_of_the_tested_extras_is_installed(requirement: Requirement) -> None:
    # Tests skip where an optional module is missing; this is what keeps such skips from
    # hiding a dependency that setup.sh failed to install.
    if requirement.marker is not None and not requirement.marker.evaluate():
        pytest.skip(f"{requirement} does not apply to this platform")
    version = metadata.version(requirement.name)
    assert requirement.specifier.contains(version, prereleases=True), f"{requirement.name} {version} is installed"


def test_pip_check_finds_no_conflicting_requirements() -> None:
    run = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
