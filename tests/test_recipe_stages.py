"""recipes/stages.sh, which every recipe sources: options, stage ranges, and markers that
hold the options their work was done with."""

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A recipe in miniature: one option per kind of stage, each stage appending to a log.
RECIPE = """\
set -euo pipefail
cd "$REPO"
lms="4-gram"
fail=no
set=()
usage="usage: recipe.sh [--stage N] [--stop-stage M] [--lms L] [--fail yes] [--set K=V]..."
source recipes/stages.sh
parse_options "$@"
work() { [ "$fail" = no ] || return 3; echo "$*" >> "$OUT/log"; }
run_stage 1 "decode with $lms" "$OUT/decode/$lms/.done" "$(options "lms=$lms")" work "decode $lms"
run_stage_once 2 "train" "$OUT/.done/train" "$(options "set=${set[*]}")" work train
"""


@pytest.fixture
def recipe(tmp_path: Path):
    script = tmp_path / "recipe.sh"
    script.write_text(RECIPE)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(script), *args], env={"PATH": "/usr/bin:/bin", "REPO": str(REPO),
                                                                 "OUT": str(tmp_path)},
                              capture_output=True, text=True, timeout=30)
    return run


def _log(tmp_path: Path) -> list[str]:
    return (tmp_path / "log").read_text().splitlines() if (tmp_path / "log").exists() else []


def test_a_rerun_skips_what_was_done_with_the_same_options(recipe, tmp_path: Path) -> None:
    first = recipe("--set", "train.lr=1e-3", "--set", "model.hidden=8")
    assert first.returncode == 0, first.stderr
    assert "=== stage 1: decode with 4-gram" in first.stdout and "=== stage 2: train" in first.stdout
    assert _log(tmp_path) == ["decode 4-gram", "train"]
    # The marker lies beside what it marks and holds the options, one a line.
    assert (tmp_path / "decode" / "4-gram" / ".done").read_text() == "lms=4-gram\n"
    assert (tmp_path / ".done" / "train").read_text() == "set=train.lr=1e-3 model.hidden=8\n"
    again = recipe("--set", "train.lr=1e-3", "--set", "model.hidden=8")
    assert again.returncode == 0 and "===" not in again.stdout
    assert "stage 1 (decode with 4-gram): done before, skipped" in again.stdout
    assert _log(tmp_path) == ["decode 4-gram", "train"]


def test_a_changed_option_redoes_its_stage(recipe, tmp_path: Path) -> None:
    assert recipe().returncode == 0
    (tmp_path / "decode" / "4-gram" / ".done").write_text("lms=4-gram\nbeam=16\n")  # done with other options
    out = recipe("--stop-stage", "1").stdout
    assert "stage 1 (decode with 4-gram): done before with beam=16, now without them: running again" in out
    assert "=== stage 1: decode with 4-gram" in out
    assert _log(tmp_path) == ["decode 4-gram", "train", "decode 4-gram"]
    assert (tmp_path / "decode" / "4-gram" / ".done").read_text() == "lms=4-gram\n"
    # Another LM is other work, with a marker of its own; the first stays done.
    out = recipe("--lms", "3-gram").stdout
    assert "=== stage 1: decode with 3-gram" in out and "stage 2 (train): done before, skipped" in out
    assert (tmp_path / "decode" / "3-gram" / ".done").is_file() and (tmp_path / "decode" / "4-gram" / ".done").is_file()


def test_changed_options_of_costly_work_stop_the_recipe(recipe, tmp_path: Path) -> None:
    assert recipe().returncode == 0
    refused = recipe("--set", "train.lr=1e-3")
    assert refused.returncode == 2
    assert "stage 2 (train) was done with set=, now set=train.lr=1e-3: give the options" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    assert _log(tmp_path) == ["decode 4-gram", "train"] and (tmp_path / ".done" / "train").read_text() == "set=\n"


def test_failed_work_is_not_marked(recipe, tmp_path: Path) -> None:
    failed = recipe("--fail", "yes")
    assert failed.returncode == 3 and "=== stage 1 finished" not in failed.stdout
    assert not (tmp_path / "decode" / "4-gram" / ".done").exists()
    assert recipe().returncode == 0 and _log(tmp_path) == ["decode 4-gram", "train"]


def test_stage_range(recipe, tmp_path: Path) -> None:
    out = recipe("--stage", "2", "--stop-stage", "2").stdout
    assert "stage 1" not in out and "=== stage 2: train" in out and _log(tmp_path) == ["train"]


@pytest.mark.parametrize(("args", "message"), [
    (["--bogus", "1"], "unknown option --bogus"),
    (["--stop_stage", "1"], "unknown option --stop_stage"),
    (["--usage", "x"], "unknown option --usage"),
    (["stage"], "unknown option stage"),
    (["--lms"], "--lms needs a value"),
    (["--stage", "two"], "--stage takes a stage number, got 'two'"),
])
def test_bad_options_are_one_line_and_the_usage(recipe, tmp_path: Path, args: list[str], message: str) -> None:
    result = recipe(*args)
    assert result.returncode == 2 and result.stdout == "" and not (tmp_path / "log").exists()
    assert message in result.stderr.splitlines()[0]
    if "stage number" not in message:
        assert result.stderr.splitlines()[1].startswith("usage: recipe.sh")
