"""The shell scripts a user runs (demo, setup, recipes, CI) parse, and survive ``pipefail``."""

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in [*REPO.glob("scripts/*.sh"), *REPO.glob("recipes/**/*.sh"), REPO / ".ci" / "run"]
                 if p.is_file())

# A reader that stops before its writer is done (head, grep -q, grep -m N) kills the writer
# with SIGPIPE; under `set -o pipefail` the pipeline then fails with 141, on some runs and
# not others, depending on how much the writer had left to write.
EARLY_EXIT_READER = re.compile(r"\|\s*(head\b|grep\s+(-\w*[qm]|--quiet|--max-count)|sed\s+(-n\s+)?['\"]?\d*q)")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_script_parses(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_pipe_into_a_reader_that_exits_early(script: Path) -> None:
    code = [line for line in script.read_text().splitlines() if not line.lstrip().startswith("#")]
    offending = [line.strip() for line in code if EARLY_EXIT_READER.search(line)]
    assert not offending, f"{script}: a pipeline that can die of SIGPIPE under pipefail: {offending}"


RECIPES = [p for p in SCRIPTS if p.relative_to(REPO).parts[0] == "recipes"]


@pytest.mark.parametrize("script", RECIPES, ids=lambda p: str(p.relative_to(REPO)))
def test_recipes_keep_their_python_in_local_scripts(script: Path) -> None:
    code = [line for line in script.read_text().splitlines() if not line.lstrip().startswith("#")]
    inline = [line.strip() for line in code if re.search(r"(python3?|PYTHON\}?\"?)\s+-c\b", line)]
    assert not inline, f"{script}: inline Python belongs in the recipe's local/*.py: {inline}"


def test_the_check_catches_the_demo_bug() -> None:
    assert EARLY_EXIT_READER.search("file=$(find dir -name '*.flac' | sort | head -n 1)")
    assert EARLY_EXIT_READER.search("x | grep -q foo") and EARLY_EXIT_READER.search("x | sed 1q")
    assert not EARLY_EXIT_READER.search("nvidia-smi -L | grep -c '^GPU'")
