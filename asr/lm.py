"""Word n-gram language models: load and score them with KenLM, build them with IRSTLM.

``kenlm`` is an optional dependency (``pip install 'asr[lm]'``); IRSTLM, used only to
*build* ARPA files, is a system package (``sudo apt-get install irstlm``). KenLM's
``build_binary``, used only to convert an ARPA file to a KenLM binary that loads in seconds
instead of minutes, is in neither PyPI's ``kenlm`` nor Debian: ``bash scripts/build_kenlm.sh``
compiles it from the ``kenlm`` source package. Scores are natural logs, the unit of the
acoustic model's log-probabilities.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import shutil
import struct
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from asr.errors import UserError
from asr.io import atomic_path
from asr.text import BLANK, Vocabulary

LOG_10 = math.log(10.0)  # KenLM and ARPA files score in log10
SMOOTHINGS = ("improved-kneser-ney", "kneser-ney", "witten-bell")
_SPECIAL_WORDS = frozenset({"<s>", "</s>", "<unk>", "<UNK>"})
_IRSTLM_HOMES = ("/usr/lib/irstlm", "/usr/local/lib/irstlm")  # Debian's package, a source build
KENLM_BIN_ENV = "KENLM_BIN"  # a folder holding KenLM's programs, e.g. a source build's build/bin
# KenLM binary format 5 (lm/binary_format.cc): an 88-byte sanity header, then order (uchar),
# probing multiplier (float), model type (int), has-vocabulary (bool), search version (uint),
# then one uint64 count per order. With the vocabulary, the file ends in its words, each
# ending in NUL, in word-index order, <unk> first.
_BINARY_MAGIC = b"mmap lm http://kheafield.com/code format version 5\n\0"
_BINARY_PARAMS = struct.Struct("<B3xfi?3xI")
_BINARY_PARAMS_AT = 88
# Probes for the case of a binary LM built without its word list (build_binary -v).
_CASE_PROBES = ("the", "and", "of", "to", "a", "in", "i", "that", "it", "was")


class LMError(UserError, ValueError):
    """A language model file is missing, malformed or does not fit the acoustic model."""


class LMDependencyError(UserError, RuntimeError):
    """A program or module needed for language models is not installed."""


def _import_kenlm() -> Any:
    try:
        import kenlm
    except ImportError:
        raise LMDependencyError(
            "the kenlm module is not installed; install it with: pip install 'asr[lm]' (or pip install kenlm)"
        ) from None
    return kenlm


def read_arpa_unigrams(path: Path) -> frozenset[str]:
    """Return the words of an ARPA file's ``\\1-grams:`` section (``.gz`` allowed), minus
    ``<s>``, ``</s>`` and ``<unk>``; stops reading at the 2-grams."""
    opener = gzip.open if path.suffix == ".gz" else open
    words = set()
    in_unigrams = False
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line == "\\1-grams:":
                in_unigrams = True
            elif line.startswith("\\"):
                if in_unigrams:
                    break
            elif in_unigrams and line:
                fields = line.split()
                if len(fields) < 2:
                    raise LMError(f"{path}: malformed 1-gram line {line!r}")
                words.add(fields[1])
    if not in_unigrams:
        raise LMError(f"{path}: not an ARPA file (no \\1-grams: section)")
    return frozenset(words - _SPECIAL_WORDS)


def read_binary_words(path: Path) -> frozenset[str] | None:
    """Return the words of a KenLM binary file, minus ``<s>``, ``</s>`` and ``<unk>``, or
    ``None`` when it was built without them (``build_binary -v``) or is not a binary."""
    with open(path, "rb") as f:
        head = f.read(_BINARY_PARAMS_AT + _BINARY_PARAMS.size)
        if not head.startswith(_BINARY_MAGIC) or len(head) < _BINARY_PARAMS_AT + _BINARY_PARAMS.size:
            return None
        order, _, _, has_vocabulary, _ = _BINARY_PARAMS.unpack_from(head, _BINARY_PARAMS_AT)
        if not has_vocabulary or order < 1:
            return None
        (n_words,) = struct.unpack("<Q", f.read(8))
        # The words fill the end of the file; read back from it until all of them are in.
        size = f.seek(0, os.SEEK_END)
        tail, chunk = b"", 1 << 20
        while tail.count(b"\0") <= n_words and len(tail) < size:
            chunk = min(2 * chunk, size)
            f.seek(size - chunk)
            tail = f.read(chunk)
    words = tail.split(b"\0")[-1 - n_words:-1]
    # The search structures end just before <unk> with bytes that need not be NUL.
    if len(words) != n_words or not words[0].endswith(b"<unk>"):
        return None
    return frozenset(w.decode("utf-8", errors="replace") for w in words[1:]) - _SPECIAL_WORDS


# ARPA files up to this many n-grams are compiled for beam search (asr/beam/ngram.py): parsing
# them takes seconds once (then a cache file beside them loads in a fraction of one) and the
# tables take about 70 bytes an n-gram. Larger files are scored through KenLM.
COMPILE_MAX_NGRAMS = 5_000_000


def arpa_counts(path: Path) -> list[int]:
    """The n-gram counts of an ARPA file's ``\\data\\`` header, lowest order first."""
    opener = gzip.open if path.suffix == ".gz" else open
    counts = []
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("ngram ") and "=" in line:
                counts.append(int(line.split("=", 1)[1]))
            elif line.startswith("\\") and line != "\\data\\":
                break
    return counts


def _is_arpa(path: Path) -> bool:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4096)
    except (OSError, EOFError):
        return False
    return head.lstrip().startswith(b"\\data\\")


class NGramLM:
    """A word n-gram LM read by KenLM from an ARPA or KenLM binary file.

    ``words`` is the LM vocabulary (from the ARPA 1-grams or the end of a KenLM binary;
    ``None`` for a binary built without it, ``build_binary -v``). Words are passed in the
    LM's own spelling; see :meth:`word_case` for matching it to an acoustic vocabulary.
    """

    def __init__(self, path: str | Path) -> None:
        kenlm = _import_kenlm()
        self.path = Path(path)
        if not self.path.is_file():
            raise LMError(f"{self.path}: language model file not found")
        config = kenlm.Config()
        config.show_progress = False
        config.arpa_complain = kenlm.ARPALoadComplain.NONE
        try:
            self._model = kenlm.Model(str(self.path), config)
        except (OSError, RuntimeError) as err:
            reason = _kenlm_reason(err)
            raise LMError(f"{self.path}: not a valid ARPA or KenLM binary language model ({reason})") from None
        self.order: int = self._model.order
        self.words: frozenset[str] | None = (read_arpa_unigrams(self.path) if _is_arpa(self.path)
                                             else read_binary_words(self.path))
        self._kenlm = kenlm

    def compiled(self) -> Any:
        """The LM as :class:`asr.beam.ngram.CompiledLM` tables, for an ARPA file of at most
        :data:`COMPILE_MAX_NGRAMS` n-grams (made on first use, then cached beside it), or
        ``None``: a KenLM binary, or an ARPA file too large to parse in Python, is scored
        through KenLM."""
        if not hasattr(self, "_compiled"):
            from asr.beam.ngram import CompiledLM  # numba: only for beam search

            small = _is_arpa(self.path) and sum(arpa_counts(self.path)) <= COMPILE_MAX_NGRAMS
            try:
                self._compiled = CompiledLM(self.path) if small else None
            except (ValueError, IndexError) as err:
                raise LMError(f"{self.path}: malformed ARPA file ({' '.join(str(err).split())[:160]})") from None
        return self._compiled

    def __reduce__(self) -> tuple:
        # A KenLM model does not pickle: another process (a tune-lm worker) loads the file again.
        return NGramLM, (self.path,)

    def begin_state(self) -> Any:
        """The state after ``<s>``."""
        state = self._kenlm.State()
        self._model.BeginSentenceWrite(state)
        return state

    def score_word(self, state: Any, word: str) -> tuple[float, Any]:
        """Return ``(ln P(word | state), next state)``; unknown words get ``<unk>``'s score."""
        out = self._kenlm.State()
        return self._model.BaseScore(state, word, out) * LOG_10, out

    def end_score(self, state: Any) -> float:
        """``ln P(</s> | state)``."""
        return self._model.BaseScore(state, "</s>", self._kenlm.State()) * LOG_10

    def score_sentence(self, words: list[str]) -> float:
        """``ln P(words </s> | <s>)``."""
        state, total = self.begin_state(), 0.0
        for word in words:
            logp, state = self.score_word(state, word)
            total += logp
        return total + self.end_score(state)

    def __contains__(self, word: str) -> bool:
        return word in self._model

    def word_case(self, vocab: Vocabulary) -> str:
        """How the decoder must spell words for this LM: ``"same"`` or ``"lower"``.

        An LM written in lower case is used with an upper-case model by lower-casing each
        word before it is scored, so no LM file needs rewriting. Raise :class:`LMError` when
        the LM's words mostly use characters the model cannot emit, since the LM would then
        score nearly every hypothesis as unknown.
        """
        letters = {t for t in vocab.tokens if t != BLANK and len(t) == 1}
        model_upper = any(c.isupper() for c in letters) and not any(c.islower() for c in letters)
        if self.words is None:
            lower = any(w in self for w in _CASE_PROBES) and not any(w.upper() in self for w in _CASE_PROBES)
            return "lower" if model_upper and lower else "same"
        if not self.words:
            raise LMError(f"{self.path}: the LM has no words")
        lm_chars = set("".join(self.words))
        case = "same"
        if model_upper and any(c.islower() for c in lm_chars) and not any(c.isupper() for c in lm_chars):
            case = "lower"
        spell = str.upper if case == "lower" else str
        unreachable = [w for w in self.words if not set(spell(w)) <= letters]
        if 2 * len(unreachable) > len(self.words):
            bad = sorted({c for w in unreachable for c in spell(w)} - letters)
            if model_upper and all(c.islower() for c in bad):
                what = "lower-case letters (the LM is mixed case; the model emits upper case only)"
            else:
                what = "characters the model cannot emit: " + " ".join(repr(c) for c in bad[:20])
            raise LMError(
                f"{self.path}: {len(unreachable)} of {len(self.words)} LM words use {what}; "
                "build the LM from text normalised with asr.text.normalize_text"
            )
        return case

    def spellable_words(self, vocab: Vocabulary) -> frozenset[str]:
        """The LM words the model can spell, in the model's spelling (for prefix restriction)."""
        if self.words is None:
            raise LMError(f"{self.path}: restricting to the LM vocabulary needs the ARPA file "
                          "(this KenLM binary was built without its words, build_binary -v)")
        letters = set(vocab.tokens[1:]) - {" "}
        spell = str.upper if self.word_case(vocab) == "lower" else str
        return frozenset(w for w in map(spell, self.words) if set(w) <= letters)


def _kenlm_reason(err: BaseException) -> str:
    """KenLM's own explanation, without its source location and C++ signature."""
    message = " ".join(str(err).split())
    reason = re.sub(r"^Cannot read model '.*?' \(", "", message)
    reason = re.split(r"threw \w+\.? ?", reason)[-1]
    reason = re.sub(r"\s*Byte: \d+\)*$|\)+$", "", reason).strip()
    return reason or type(err).__name__


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
                try:
                    words = raw.decode("utf-8").split()
                except UnicodeDecodeError as err:
                    raise LMError(f"{text_file}:{number}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column "
                                  f"{err.start + 1}); write the LM text in UTF-8") from None
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
        if not _is_arpa(arpa):
            raise LMError(f"{text_file}: IRSTLM compile-lm wrote no ARPA file ({_log_problem(log)})")
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as partial:  # a separate name, so `out` is never half written
            _copy_clamping_positive_logprobs(arpa, partial)
    return _loads_if_kenlm(out)


def _loads_if_kenlm(path: Path) -> Path:
    """``path``, after loading it once (an LMError if KenLM refuses it) when kenlm is installed."""
    try:
        _import_kenlm()
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
    if not _is_arpa(arpa):
        raise LMError(f"{arpa}: not an ARPA file (it does not start with \\data\\)")
    program = find_build_binary()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as partial:
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
