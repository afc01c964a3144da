"""Building word n-gram LMs: ARPA files with IRSTLM (:func:`build_arpa`), KenLM binaries
with KenLM's ``build_binary`` (:func:`build_binary`).

IRSTLM is a system package (``sudo apt-get install irstlm``). ``build_binary``, which turns
an ARPA file into a KenLM binary that loads in seconds instead of minutes, is in neither
PyPI's ``kenlm`` nor Debian: ``bash scripts/build_kenlm.sh`` compiles it from the ``kenlm``
source package.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

from asr.io import atomic_path
from asr.lm.load import LMDependencyError, LMError, NGramLM, import_kenlm, is_arpa, utf8_line

SMOOTHINGS = ("improved-kneser-ney", "kneser-ney", "witten-bell")
_IRSTLM_HOMES = ("/usr/lib/irstlm", "/usr/local/lib/irstlm")  # Debian's package, a source build
KENLM_BIN_ENV = "KENLM_BIN"  # a folder holding KenLM's programs, e.g. a source build's build/bin


def _irstlm_home() -> Path:
    candidates = [os.environ.get("IRSTLM", ""), *_IRSTLM_HOMES]
    found = shutil.which("build-lm.sh")
    if found:
        candidates.append(str(Path(found).resolve().parent.parent))
    for home in candidates:
        if home and (Path(home) / "bin" / "build-lm.sh").is_file() and (Path(home) / "bin" / "compile-lm").is_file():
            return Path(home)
    raise LMDependencyError("IRSTLM is not installed (needed to build ARPA LMs): sudo apt-get install irstlm")


def build_arpa(text_file: Path, order: int, out: Path, smoothing: str = "improved-kneser-ney",
               prune_singletons: bool = False) -> Path:
    """Estimate a word ``order``-gram LM on ``text_file`` with IRSTLM and write it to ``out`` as ARPA.

    ``text_file`` holds one normalised sentence per line. ``smoothing`` is IRSTLM's
    ``improved-kneser-ney`` (modified Kneser-Ney, which IRSTLM calls improved shift-beta),
    ``kneser-ney`` or ``witten-bell``. When kenlm is installed the result is loaded once
    to check it. ``prune_singletons`` drops the n-grams above the unigrams that occur once
    (IRSTLM ``-p``), which roughly halves a large LM and the time KenLM takes to load it.
    Returns ``out``.
    """
    text_file, out = Path(text_file), Path(out)
    if smoothing not in SMOOTHINGS:
        raise LMError(f"unknown smoothing {smoothing!r}; choose one of {', '.join(SMOOTHINGS)}")
    if order < 2:
        raise LMError(f"LM order must be at least 2 (KenLM reads no unigram-only models), got {order}")
    if not text_file.is_file():
        raise LMError(f"{text_file}: LM training text not found")
    home = _irstlm_home()
    env = {**os.environ, "IRSTLM": str(home), "PATH": f"{home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    with tempfile.TemporaryDirectory(prefix="asr-lm-") as tmp:
        tmp_dir = Path(tmp)
        # IRSTLM expects sentence boundaries to be marked in the training text.
        sentences = tmp_dir / "text.se"
        n_lines = 0
        with open(text_file, "rb") as src, open(sentences, "w", encoding="utf-8") as dst:
            for number, raw in enumerate(src, 1):
                words = utf8_line(raw, text_file, number, "the LM text").split()
                if words:
                    dst.write(f"<s> {' '.join(words)} </s>\n")
                    n_lines += 1
        if n_lines == 0:
            raise LMError(f"{text_file}: LM training text is empty")
        ilm = tmp_dir / "lm.ilm.gz"
        log = tmp_dir / "build.log"
        build = ["bash", str(home / "bin" / "build-lm.sh"), "-i", str(sentences), "-n", str(order), "-o", str(ilm),
                 "-s", smoothing, "-k", "1", "-t", str(tmp_dir / "stat"), "-l", str(log)]
        if prune_singletons:
            build.append("-p")
        _run(build, env, log, text_file)
        if not ilm.is_file() or ilm.stat().st_size == 0:
            problem = _log_problem(log)
            if "division by zero" in problem and smoothing != "witten-bell":
                raise LMError(f"{text_file}: too little text for {smoothing} smoothing "
                              "(IRSTLM divided by zero on its count statistics); use witten-bell")
            raise LMError(f"{text_file}: IRSTLM build-lm.sh produced no LM ({problem})")
        arpa = tmp_dir / "lm.arpa"
        _run([str(home / "bin" / "compile-lm"), "--text=yes", str(ilm), str(arpa)], env, log, text_file)
        if not is_arpa(arpa):
            raise LMError(f"{text_file}: IRSTLM compile-lm wrote no ARPA file ({_log_problem(log)})")
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out, what="ARPA LM") as partial:  # a separate name, so `out` is never half written
            _copy_clamping_positive_logprobs(arpa, partial)
    return _loads_if_kenlm(out)


def _loads_if_kenlm(path: Path) -> Path:
    """``path``, after loading it once (an LMError if KenLM refuses it) when kenlm is installed."""
    try:
        import_kenlm()
    except LMDependencyError:
        return path
    NGramLM(path)
    return path


def _copy_clamping_positive_logprobs(arpa: Path, out: Path) -> None:
    """Copy an ARPA file, writing 0 for the rare log10 probability IRSTLM rounds above 0
    (``1.1e-07``): the kenlm module refuses such a file and offers no switch to accept it."""
    in_ngrams = False
    with open(arpa, "rb") as src, open(out, "wb") as dst:
        for line in src:
            if line.startswith(b"\\"):
                in_ngrams = line.rstrip().endswith(b"-grams:")
            elif in_ngrams and line[:1] != b"-" and line.strip():
                logprob, sep, rest = line.partition(b"\t")
                try:
                    if float(logprob) > 0:
                        line = b"0" + sep + rest
                except ValueError:
                    pass  # KenLM names the malformed line when it loads the file
            dst.write(line)


def find_build_binary() -> Path:
    """KenLM's ``build_binary``: in ``$KENLM_BIN``, else on ``PATH``, else beside this
    Python's own programs (where ``scripts/build_kenlm.sh`` puts it)."""
    folders = [os.environ.get(KENLM_BIN_ENV, ""), os.environ.get("PATH", ""), sysconfig.get_path("scripts")]
    found = shutil.which("build_binary", path=os.pathsep.join(f for f in folders if f))
    if found is None:
        raise LMDependencyError(f"KenLM's build_binary is not installed (needed for binary LMs): run "
                                f"bash scripts/build_kenlm.sh, or set {KENLM_BIN_ENV} to the folder holding it")
    return Path(found)


def build_binary(arpa: Path, out: Path) -> Path:
    """Convert the ARPA file ``arpa`` (``.gz`` allowed) to a KenLM binary at ``out`` and return ``out``.

    The binary is KenLM's trie without quantisation, so it scores exactly as the ARPA file,
    and keeps the vocabulary, so :class:`NGramLM` can list its words. It loads in seconds
    where a large ARPA file takes minutes, and takes about a third of the ARPA's space.
    Positive log probabilities, which IRSTLM writes by rounding, are read as 0 (``-i``).
    When kenlm is installed the result is loaded once to check it.
    """
    arpa, out = Path(arpa), Path(out)
    if not arpa.is_file():
        raise LMError(f"{arpa}: ARPA file not found")
    if not is_arpa(arpa):
        raise LMError(f"{arpa}: not an ARPA file (it does not start with \\data\\)")
    program = find_build_binary()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, what="KenLM binary") as partial:
        # -T: the trie's sort files go to the output's disk, not the working folder's.
        cmd = [str(program), "-i", "-T", f"{out.parent.absolute()}{os.sep}", "trie", str(arpa), str(partial)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            detail = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
            raise LMError(f"{arpa}: build_binary failed: {detail[-1].strip() if detail else result.returncode}")
    return _loads_if_kenlm(out)


def _run(cmd: list[str], env: dict[str, str], log: Path, text_file: Path) -> None:
    result = subprocess.run(cmd, env=env, cwd=log.parent, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise LMError(f"{text_file}: {Path(cmd[1] if cmd[0] == 'bash' else cmd[0]).name} failed: "
                      f"{detail[-1] if detail else _log_problem(log)}")


def _log_problem(log: Path) -> str:
    """The first line of an IRSTLM log that reports a problem, else its last line."""
    lines = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
    problems = [line for line in lines if re.search(r"error|illegal|cannot|fail|not found", line, re.IGNORECASE)]
    return (problems or lines or ["no log"])[0 if problems else -1].strip()
