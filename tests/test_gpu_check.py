"""scripts/gpu_check.sh, the command a session runs once it is lent a GPU, works: its CPU
smoke mode runs every check on tiny sizes, and its memory fit sizes a batch budget."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("amp", "speed", "memory", "loader", "converge", "decode")


def _script_module():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_batch_budget_fills_the_asked_share_of_memory():
    suggest = _script_module().suggest_batch_seconds
    gib = 2**30
    # 10 GiB of weights and state, 0.05 GiB a second of audio: 85% of 80 GiB at (68 - 10) / 0.05 s.
    points = [(300.0, (10 + 0.05 * 300) * gib), (1200.0, (10 + 0.05 * 1200) * gib)]
    assert suggest(points, 80 * gib) == pytest.approx(1160.0)
    assert suggest(points, 80 * gib, fraction=0.5) == pytest.approx(600.0)
    with pytest.raises(ValueError, match="does not grow"):
        suggest([(300.0, 5 * gib), (1200.0, 5 * gib)], 80 * gib)


@pytest.mark.slow
def test_cpu_smoke_runs_every_check(tmp_path: Path) -> None:
    result = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--cpu-smoke", "--out", str(tmp_path),
                             "--corpus", str(tmp_path / "no-corpus")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert all(section in report and "error" not in report[section] for section in SECTIONS), report
    for layout in ("split", "fused"):
        assert report["amp"][layout]["ok"]
    assert {"fp32_split", "fp32_fused", "amp_split", "amp_fused"} <= set(report["speed"])
    assert all(v > 0 for k, v in report["speed"].items() if k.startswith(("fp32", "amp")))
    assert report["converge"]["steps"] > 0 and 0 <= report["converge"]["dev_cer"] <= 100
    assert report["converge"]["host_syncs_per_step"] == 0.0  # counted on CUDA only
    assert "| amp | fused.ok | True |" in (tmp_path / "gpu_check.md").read_text()


def test_without_a_gpu_it_says_so_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    result = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout.strip().count("\n") == 0 and "--cpu-smoke" in result.stdout
