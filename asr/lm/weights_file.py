"""Tuned LM weights kept next to a checkpoint, and the decoding settings they fill in.

``asr tune-lm`` (:mod:`asr.lm.tune`) stores its best point in ``CKPT_DIR/lm_tuning.json``, one
entry per (checkpoint file, LM file)::

    {"format": "asr-lm-tuning", "version": 1, "tunings": [
      {"checkpoint": {"name": "best.pt", "size": 1234, "mtime_ns": 1..., "md5": "..."},
       "lm": {"path": "/abs/lm.arpa", "size": 5678, "mtime_ns": 1..., "md5": "..."},
       "alpha": 0.75, "beta": 1.5, "beam_width": 16, "wer": 0.081, "cer": 0.032,
       "dev_manifest": "/abs/dev.jsonl", "utterances": 500, "points": 81, "tuned_at": "..."}]}

An entry applies only while both files are unchanged: same resolved LM path, same size,
and same modification time or, failing that, same MD5 (so a copied or touched file still
matches, and a rebuilt LM or retrained model does not). :func:`decoding_config` fills in
the stored values wherever the caller gave none.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

from asr.errors import ConfigError
from asr.decode import DecodingConfig
from asr.io import atomic_write, md5

TUNING_FILE = "lm_tuning.json"
FORMAT = "asr-lm-tuning"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TunedWeights:
    """The stored result of a tuning run for one checkpoint and LM."""

    alpha: float
    beta: float
    beam_width: int
    wer: float
    cer: float
    dev_manifest: str
    utterances: int
    points: int
    source: Path  # the tuning file it was read from or written to



def tuning_file(checkpoint: str | Path) -> Path:
    return Path(checkpoint).resolve().parent / TUNING_FILE


def _fingerprint(path: Path) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "md5": md5(path)}


def _unchanged(stored: dict, path: Path) -> bool:
    """Whether ``path`` is still the file ``stored`` describes (MD5 only when the time differs)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    if stat.st_size != stored.get("size"):
        return False
    return stat.st_mtime_ns == stored.get("mtime_ns") or md5(path) == stored.get("md5")


def _read_entries(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT or raw.get("version") != FORMAT_VERSION:
            raise ValueError("not an asr LM tuning file of this version")
        entries = raw["tunings"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("'tunings' is not a list of objects")
    except (ValueError, KeyError, AttributeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: damaged LM tuning file ({err}); delete it and rerun asr tune-lm") from None
    return entries


def _matches(entry: dict, checkpoint: Path, lm_path: Path) -> bool:
    """Whether ``entry`` is for this checkpoint file name and LM path, whatever their versions."""
    return (entry.get("checkpoint", {}).get("name") == checkpoint.name
            and entry.get("lm", {}).get("path") == str(lm_path))


def store_tuned(checkpoint: str | Path, lm_path: str | Path, tuned: TunedWeights) -> Path:
    """Write ``tuned`` for (checkpoint, LM) into the tuning file, replacing an older entry."""
    checkpoint, lm_path = Path(checkpoint).resolve(), Path(lm_path).resolve()
    path = tuning_file(checkpoint)
    entries = [e for e in _read_entries(path) if not _matches(e, checkpoint, lm_path)]
    entries.append({
        "checkpoint": {"name": checkpoint.name, **_fingerprint(checkpoint)},
        "lm": {"path": str(lm_path), **_fingerprint(lm_path)},
        "alpha": tuned.alpha, "beta": tuned.beta, "beam_width": tuned.beam_width,
        "wer": tuned.wer, "cer": tuned.cer, "dev_manifest": tuned.dev_manifest,
        "utterances": tuned.utterances, "points": tuned.points,
        "tuned_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })
    with atomic_write(path, what="LM tuning file") as f:
        f.write(json.dumps({"format": FORMAT, "version": FORMAT_VERSION, "tunings": entries}, indent=2) + "\n")
    return path


def find_tuned(checkpoint: str | Path, lm_path: str | Path) -> tuple[TunedWeights | None, bool]:
    """The stored weights for this checkpoint and LM, and whether an entry exists that no
    longer applies because one of the two files changed since it was tuned."""
    checkpoint, lm_path = Path(checkpoint).resolve(), Path(lm_path).resolve()
    path = tuning_file(checkpoint)
    stale = False
    for entry in _read_entries(path):
        if not _matches(entry, checkpoint, lm_path):
            continue
        if not (_unchanged(entry["checkpoint"], checkpoint) and _unchanged(entry["lm"], lm_path)):
            stale = True
            continue
        try:
            return TunedWeights(float(entry["alpha"]), float(entry["beta"]), int(entry["beam_width"]),
                                float(entry["wer"]), float(entry["cer"]), str(entry.get("dev_manifest", "")),
                                int(entry.get("utterances", 0)), int(entry.get("points", 0)), path), False
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"{path}: damaged LM tuning entry for {lm_path} ({err!r}); "
                              "delete the file and rerun asr tune-lm") from None
    return None, stale


def decoding_config(
    checkpoint: str | Path,
    decoder: str | None = None,
    beam_width: int | None = None,
    lm: str | Path | None = None,
    alpha: float | None = None,
    beta: float | None = None,
    spells_words: bool = True,
) -> tuple[DecodingConfig, str | None]:
    """The decoding configuration for the given options; ``None`` means not given.

    The decoder defaults to beam search when an LM or a beam width is given, or when the
    model's units do not spell words (``spells_words`` false: a phone model, whose words
    come from a lexicon search); else greedy.
    With an LM, alpha, beta and the beam width not given come from the tuning file when it
    holds values for this checkpoint and LM, else from :class:`DecodingConfig`'s defaults.
    Also returns a one-line note saying where alpha and beta came from (``None`` when the
    caller gave both or no LM is used).
    """
    defaults = DecodingConfig()
    if decoder is None:
        decoder = "beam" if lm is not None or beam_width is not None or not spells_words else "greedy"
    if decoder != "beam":
        if lm is not None or alpha is not None or beta is not None or beam_width is not None:
            raise ConfigError(f"an LM, alpha, beta and a beam width apply only to beam search, not to decoder {decoder!r}")
        return DecodingConfig(decoder=decoder), None
    if lm is None:
        if alpha is not None or beta is not None:
            raise ConfigError("alpha and beta weight an LM, and no LM was given")
        return DecodingConfig("beam", beam_width if beam_width is not None else defaults.beam_width), None
    tuned, stale = find_tuned(checkpoint, lm) if Path(lm).is_file() else (None, False)
    base = tuned or defaults
    config = DecodingConfig(
        "beam", beam_width if beam_width is not None else base.beam_width, str(lm),
        base.alpha if alpha is None else alpha, base.beta if beta is None else beta,
    )
    if alpha is not None and beta is not None:
        return config, None
    filled = " ".join(f"{name}={value:g}" for name, value, given in (
        ("alpha", config.alpha, alpha), ("beta", config.beta, beta), ("beam-width", config.beam_width, beam_width),
    ) if given is None)
    if tuned is not None:
        return config, (f"using tuned {filled} (dev set {Path(tuned.dev_manifest).name or '?'}, "
                        f"WER {100 * tuned.wer:.2f}%; from {tuned.source})")
    why = "the LM or the model changed since they were tuned" if stale else "none tuned for this model and LM"
    return config, (f"using default {filled} ({why}; asr tune-lm stores tuned values in {tuning_file(checkpoint)})")
