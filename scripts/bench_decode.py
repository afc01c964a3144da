"""Benchmark CTC decoders on the same log-probabilities: speed and accuracy.

Decodes one set of log-probabilities with asr's greedy decoder, asr's beam search without
and with a word n-gram LM, pyctcdecode (without and with the same LM) and flashlight-text's
lexicon-free beam search (without an LM, and with the same word LM through a Python
callback), flashlight-text's lexicon decoder with its C++ KenLM and asr's lexicon decoder on
the same lexicon and LM, all with the same beam width, and prints one Markdown table: setup seconds
(building the decoder, loading the LM), utterances per second, real-time factor (decoding
seconds per second of audio, when durations are known), WER and CER.

pyctcdecode and flashlight-text are benchmark-only dependencies (asr never imports them),
declared in the extras ``bench`` and ``bench-pyctcdecode``:

    pip install -e '.[bench]'               # flashlight-text
    pip install -e '.[bench-pyctcdecode]'   # in a virtualenv of its own: pyctcdecode 0.5
                                            # requires numpy<2 and downgrades asr's numpy

A decoder that is not installed, or fails to import, gets a "not available" row with the
reason.

Usage:

    # once: the model's log-probs on a manifest (kept with references, vocabulary, durations)
    python scripts/bench_decode.py --model exp/synthetic/best.pt --manifest data/dev.jsonl \\
        --save-logprobs exp/synthetic/dev-logprobs.pt --only-save
    # then, as often as needed
    python scripts/bench_decode.py exp/synthetic/dev-logprobs.pt --lm data/lm/3gram.arpa --beam-width 16
    # on a busy machine: five passes each, the decoders taking turns; the fastest counts
    python scripts/bench_decode.py exp/synthetic/dev-logprobs.pt --lm data/lm/3gram.arpa --repeats 5

The log-probs file is a ``torch.save`` dict: ``log_probs`` (list of (T_i, V) float tensors,
log-softmax, blank = 0), ``references`` (list of str), ``vocab`` (list of V tokens), and
optionally ``durations`` (seconds of audio per utterance) and ``checkpoint`` (its path).
Without ``--alpha``/``--beta``, the values ``asr tune-lm`` stored for that checkpoint and
LM are used, else asr's defaults.

Same objective for every LM decoder: a hypothesis scores

    ln P_ctc + alpha * ln P_lm(w_1 .. w_n </s> | <s>) + beta * n

asr applies alpha to natural-log LM probabilities (KenLM's log10 times ln 10). pyctcdecode
does the same: its ``LanguageModel.score`` computes ``alpha * log10_score * LOG_BASE_CHANGE_FACTOR
+ beta`` per word, with LOG_BASE_CHANGE_FACTOR = 1 / log10(e) = ln 10, and scores ``</s>``
with the last word (``lm_score_boundary=True``). So the same alpha and beta are passed
unchanged. They differ only for words outside the LM: asr replaces their LM log-probability
with ``oov_logprob`` (-20 nats), pyctcdecode adds ``unk_score_offset`` (log10 units) to
KenLM's ``<unk>`` score; it is set to -20 / ln 10 = -8.69 here so an unknown word costs about
the same. Partial-word penalties differ in form too (asr: ``alpha * oov_logprob`` while a
partial word is no prefix of an LM word; pyctcdecode: ``unk_score_offset``, unweighted).
For flashlight, the word LM is a Python ``LM`` subclass that returns asr's weighted scores
itself (``lm_weight`` 1, ``sil_score`` 0), so its objective is asr's exactly; its speed then
includes one Python call per emitted token and hypothesis.

Pruning is matched as far as the decoders allow: tokens below ``token_min_logprob`` -10 are
not expanded (flashlight expands all tokens), hypotheses more than 10 below the best are
dropped. ``--threads`` bounds the intra-op threads of torch, numba and BLAS; every decoder
runs one utterance at a time in this process.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

OOV_LOGPROB = -20.0  # asr's BeamSearchDecoder default, natural log
PRUNE = -10.0  # asr's beam_prune_logprob and token_min_logprob defaults


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("logprobs", nargs="?", help="log-probs file (.pt) to benchmark")
    p.add_argument("--model", help="checkpoint: compute the log-probs on --manifest and save them")
    p.add_argument("--manifest", help="manifest to compute log-probs on (with --model)")
    p.add_argument("--save-logprobs", metavar="FILE", help="where to save the computed log-probs (with --model)")
    p.add_argument("--only-save", action="store_true", help="save the log-probs and stop")
    p.add_argument("--device", default="auto", help="device for the model (auto, cpu, cuda)")
    p.add_argument("--lm", help="word n-gram LM (ARPA, or KenLM binary) for the LM decoders")
    p.add_argument("--alpha", type=float, help="LM weight (default: tuned for the checkpoint and LM, else 0.5)")
    p.add_argument("--beta", type=float, help="word bonus (default: tuned, else 1.0)")
    p.add_argument("--beam-width", default="16", metavar="N[,N...]",
                   help="beam width, or several (16,64,256): every beam decoder runs at each (default 16)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads for torch, numba and BLAS (default 1)")
    p.add_argument("--limit", type=int, help="benchmark only the first N utterances")
    p.add_argument("--repeats", type=int, default=1,
                   help="decode every utterance N times, the decoders taking turns; the fastest pass counts "
                        "(default 1)")
    p.add_argument("--decoders", help="comma-separated subset of: " + ", ".join(DECODERS))
    args = p.parse_args(argv)
    if args.model and not (args.manifest and args.save_logprobs):
        p.error("--model needs --manifest and --save-logprobs")
    if not args.model and not args.logprobs:
        p.error("give a log-probs file, or --model, --manifest and --save-logprobs to make one")
    try:
        args.beam_widths = [int(w) for w in args.beam_width.split(",")]
    except ValueError:
        p.error(f"--beam-width takes whole numbers separated by commas, got {args.beam_width!r}")
    if args.threads < 1 or min(args.beam_widths) < 1 or args.repeats < 1:
        p.error("--threads, --beam-width and --repeats must be at least 1")
    return args


# --- decoders: each builder returns a function (T, V) float32 array -> text ------------------

Decode = Callable[["np.ndarray"], str]


def asr_greedy(ctx: dict) -> Decode:
    from asr.decode import GreedyDecoder

    decoder = GreedyDecoder(ctx["vocab"])
    return lambda lp: decoder(torch.from_numpy(lp)[None], torch.tensor([lp.shape[0]]))[0].text


def asr_beam(ctx: dict, with_lm: bool = False) -> Decode:
    from asr.beam import BeamSearchDecoder
    from asr.lm.load import NGramLM

    lm = NGramLM(ctx["lm"]) if with_lm else None
    decoder = BeamSearchDecoder(ctx["vocab"], beam_width=ctx["beam_width"], lm=lm, alpha=ctx["alpha"],
                                beta=ctx["beta"], oov_logprob=OOV_LOGPROB, beam_prune_logprob=PRUNE,
                                token_min_logprob=PRUNE)
    return lambda lp: decoder(torch.from_numpy(lp)[None], torch.tensor([lp.shape[0]]))[0].text


def pyctcdecode_beam(ctx: dict, with_lm: bool = False) -> Decode:
    import logging

    import pyctcdecode

    logging.getLogger("pyctcdecode").setLevel(logging.ERROR)
    labels = [""] + list(ctx["vocab"].tokens[1:])  # pyctcdecode's blank is ""
    if with_lm:
        decoder = pyctcdecode.build_ctcdecoder(labels, kenlm_model_path=str(ctx["lm"]), alpha=ctx["alpha"],
                                               beta=ctx["beta"], unk_score_offset=OOV_LOGPROB / math.log(10),
                                               lm_score_boundary=True)
    else:
        decoder = pyctcdecode.build_ctcdecoder(labels)
    width = ctx["beam_width"]
    return lambda lp: " ".join(
        decoder.decode(lp, beam_width=width, beam_prune_logp=PRUNE, token_min_logp=PRUNE).split())


def flashlight_lexicon_free(ctx: dict, with_lm: bool = False) -> Decode:
    from flashlight.lib.text.decoder import CriterionType, LexiconFreeDecoder, LexiconFreeDecoderOptions, ZeroLM

    vocab = ctx["vocab"]
    lm = _flashlight_word_lm(ctx) if with_lm else ZeroLM()
    options = LexiconFreeDecoderOptions(
        beam_size=ctx["beam_width"], beam_size_token=len(vocab), beam_threshold=-PRUNE,
        lm_weight=1.0 if with_lm else 0.0, sil_score=0.0, log_add=True, criterion_type=CriterionType.CTC,
    )
    decoder = LexiconFreeDecoder(options, lm, vocab.space, vocab.blank, [])

    def decode(lp: np.ndarray) -> str:
        lp = np.ascontiguousarray(lp, dtype=np.float32)
        best = decoder.decode(lp.ctypes.data, lp.shape[0], lp.shape[1])[0]
        path = best.tokens[1:-1]  # the decoder pads the frame path with a word boundary at each end
        tokens = [t for i, t in enumerate(path) if t != vocab.blank and (i == 0 or t != path[i - 1])]
        return " ".join(vocab.decode(tokens).split())

    decode.lm = lm  # the decoder holds only the C++ side: a Python LM must stay alive with it
    return decode


def flashlight_lexicon(ctx: dict) -> Decode:
    """flashlight-text's lexicon decoder with its C++ KenLM: what torchaudio's ``ctc_decoder``
    wraps. The lexicon is the LM's words that the vocabulary can spell, each spelled letter by
    letter; the space token is flashlight's silence, between words. flashlight weighs KenLM's
    log10 scores, so ``lm_weight`` is alpha x ln 10 (asr's alpha is per natural-log unit);
    ``word_score`` is beta. Unlike asr's beam, it can emit only lexicon words."""
    from flashlight.lib.text.decoder import (
        CriterionType,
        KenLM,
        LexiconDecoder,
        LexiconDecoderOptions,
        SmearingMode,
        Trie,
    )
    from flashlight.lib.text.dictionary import Dictionary

    from asr.lm.load import NGramLM

    vocab = ctx["vocab"]
    ngram = NGramLM(ctx["lm"])
    lower = ngram.word_case(vocab) == "lower"
    words = sorted(ngram.spellable_words(vocab))
    word_dict = Dictionary()
    for word in ["<unk>", *words]:
        word_dict.add_entry(word.lower() if lower else word)
    lm = KenLM(str(ctx["lm"]), word_dict)
    trie = Trie(len(vocab), vocab.space)
    start = lm.start(False)
    for index, word in enumerate(words, start=1):
        _, score = lm.score(start, index)
        trie.insert(vocab.encode(word) + [vocab.space], index, score)
    trie.smear(SmearingMode.MAX)
    options = LexiconDecoderOptions(
        beam_size=ctx["beam_width"], beam_size_token=len(vocab), beam_threshold=-PRUNE,
        lm_weight=ctx["alpha"] * math.log(10), word_score=ctx["beta"], unk_score=-math.inf, sil_score=0.0,
        log_add=False, criterion_type=CriterionType.CTC,
    )
    decoder = LexiconDecoder(options, trie, lm, vocab.space, vocab.blank, 0, [], False)

    def decode(lp: np.ndarray) -> str:
        lp = np.ascontiguousarray(lp, dtype=np.float32)
        best = decoder.decode(lp.ctypes.data, lp.shape[0], lp.shape[1])[0]
        return " ".join(words[i - 1] for i in best.words if i > 0)

    decode.keep = (lm, trie, word_dict)  # the C++ decoder does not own them
    return decode


def asr_lexicon(ctx: dict, sep_required: bool = True) -> Decode:
    """asr's lexicon decoder on the flashlight lexicon row's lexicon (the LM's words that the
    vocabulary can spell, letter by letter), LM, weights and width; the space token is the
    word separator. With ``sep_required`` a word must be followed by a space or the end, as
    flashlight's lexicon spells each word with a trailing space; without, words may also
    follow each other directly. alpha is per natural-log unit, as asr's beam."""
    from asr.beam import LexiconBeamSearchDecoder
    from asr.lm.load import NGramLM

    vocab = ctx["vocab"]
    lm = NGramLM(ctx["lm"])
    lexicon = {word: [tuple(vocab.encode(word))] for word in lm.spellable_words(vocab)}
    decoder = LexiconBeamSearchDecoder(vocab, lexicon, beam_width=ctx["beam_width"], lm=lm, alpha=ctx["alpha"],
                                       beta=ctx["beta"], word_sep=vocab.space, sep_required=sep_required,
                                       token_min_logprob=PRUNE,
                                       beam_prune_logprob=PRUNE, oov_logprob=OOV_LOGPROB)
    return lambda lp: decoder(torch.from_numpy(lp)[None], torch.tensor([lp.shape[0]]))[0].text


def _flashlight_word_lm(ctx: dict):
    """asr's word-LM fusion as a flashlight LM: weighted scores at word ends, and a
    provisional penalty while a partial word is no prefix of an LM word (as asr)."""
    from flashlight.lib.text.decoder import LM, LMState

    from asr.lm.load import NGramLM

    ngram = NGramLM(ctx["lm"])
    vocab, alpha, beta = ctx["vocab"], ctx["alpha"], ctx["beta"]
    lower = ngram.word_case(vocab) == "lower"
    words = set(ngram.spellable_words(vocab)) if ngram.words is not None else None
    prefixes = {w[:i] for w in words for i in range(1, len(w) + 1)} if words is not None else None
    penalty = alpha * OOV_LOGPROB

    def word_score(kenlm_state, word: str):
        logp, next_state = ngram.score_word(kenlm_state, word.lower() if lower else word)
        if words is not None and word not in words:
            logp = OOV_LOGPROB
        return alpha * logp + beta, next_state

    class WordLM(LM):
        def __init__(self) -> None:
            LM.__init__(self)
            # LMState (one per token history) -> (kenlm state, partial word, penalty charged,
            # score of the token that led here)
            self.states: dict = {}

        def start(self, start_with_nothing: bool):
            state = LMState()
            self.states = {state: (ngram.begin_state(), "", 0.0, 0.0)}
            return state

        def score(self, state, token: int):
            child = state.child(token)
            if child not in self.states:
                kenlm_state, word, charged, _ = self.states[state]
                if token == vocab.space:
                    score, kenlm_state = word_score(kenlm_state, word) if word else (0.0, kenlm_state)
                    self.states[child] = (kenlm_state, "", 0.0, score - charged)
                else:
                    word += vocab.tokens[token]
                    extra = penalty if prefixes is not None and not charged and word not in prefixes else 0.0
                    self.states[child] = (kenlm_state, word, charged + extra, extra)
            return child, self.states[child][3]

        def finish(self, state):
            kenlm_state, word, charged, _ = self.states[state]
            score = 0.0
            if word:
                score, kenlm_state = word_score(kenlm_state, word)
            return state, score - charged + alpha * ngram.end_score(kenlm_state)

    return WordLM()


DECODERS: dict[str, tuple[str, Callable[[dict], Decode], bool]] = {
    # name: (label, builder, needs an LM)
    "greedy": ("asr greedy", asr_greedy, False),
    "beam": ("asr beam, no LM", asr_beam, False),
    "beam-lm": ("asr beam + LM", lambda ctx: asr_beam(ctx, True), True),
    "pyctcdecode": ("pyctcdecode, no LM", pyctcdecode_beam, False),
    "pyctcdecode-lm": ("pyctcdecode + LM", lambda ctx: pyctcdecode_beam(ctx, True), True),
    "flashlight": ("flashlight lexicon-free, no LM", flashlight_lexicon_free, False),
    "flashlight-lm": ("flashlight lexicon-free + LM (Python LM)", lambda ctx: flashlight_lexicon_free(ctx, True), True),
    "flashlight-lexicon": ("flashlight lexicon + KenLM (C++)", flashlight_lexicon, True),
    "asr-lexicon": ("asr lexicon + LM", asr_lexicon, True),
    "asr-lexicon-free-sep": ("asr lexicon + LM, space optional", lambda ctx: asr_lexicon(ctx, False), True),
}


# --- running -------------------------------------------------------------------------


def save_log_probs(args: argparse.Namespace) -> Path:
    from asr.checkpoint import load_model
    from asr.data import read_manifest
    from asr.inference import resolve_device
    from asr.lm.tune import model_log_probs

    loaded = load_model(args.model, resolve_device(args.device))
    utterances = read_manifest(args.manifest)
    log_probs, utterances, skipped = model_log_probs(loaded, utterances, progress=True)
    for utterance_id, error in skipped.items():
        print(f"skipped {utterance_id}: {error}", file=sys.stderr)
    out = Path(args.save_logprobs)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({
        "log_probs": log_probs, "references": [u.text for u in utterances], "vocab": list(loaded.vocab.tokens),
        "durations": [u.duration for u in utterances], "ids": [u.id for u in utterances],
        "checkpoint": str(Path(args.model).resolve()),
    }, out)
    print(f"saved log-probs of {len(utterances)} utterances to {out}", file=sys.stderr)
    return out


def build(name: str, ctx: dict):
    """(label, decode function, seconds to build it and decode one utterance), or (label, None,
    the note saying why it cannot run)."""
    label, builder, needs_lm = DECODERS[name]
    if needs_lm and ctx["lm"] is None:
        return label, None, "skipped: no --lm"
    start = time.perf_counter()
    try:
        decode = builder(ctx)
        decode(ctx["first"])  # compiles numba kernels, fills first caches: not timed as decoding
    except ImportError as err:
        return label, None, f"not available: {' '.join(str(err).split())}"
    except Exception as err:  # a third-party decoder that imports but does not run here
        return label, None, f"not available: {type(err).__name__}: {' '.join(str(err).split())[:200]}"
    return label, decode, time.perf_counter() - start


def run_all(names: list[str], ctx: dict, log_probs: list, references: list[str], audio_seconds: float | None,
            repeats: int) -> list[list[str]]:
    """One row per decoder. Each decodes every utterance ``repeats`` times, the decoders taking
    turns, so that a change in the machine's load falls on all of them; the fastest pass counts."""
    from asr.metrics import corpus_errors

    built = [build(name, {**ctx, "first": log_probs[0]}) for name in names]
    seconds: list[list[float]] = [[] for _ in built]
    texts: list[list[str]] = [[] for _ in built]
    for _ in range(repeats):
        for i, (_, decode, _) in enumerate(built):
            if decode is None:
                continue
            start = time.perf_counter()
            texts[i] = [decode(lp) for lp in log_probs]
            seconds[i].append(time.perf_counter() - start)
    rows = []
    for (label, decode, setup), times, hyps in zip(built, seconds, texts):
        if decode is None:
            rows.append([label, "", "", "", "", "", setup])
            continue
        words, chars = corpus_errors(list(zip(references, hyps)))
        best = min(times)
        rtf = f"{best / audio_seconds:.4f}" if audio_seconds else ""
        spread = f"passes {min(times):.2f}-{max(times):.2f} s" if repeats > 1 else ""
        rows.append([label, f"{setup:.2f}", f"{len(log_probs) / best:.1f}", rtf, f"{100 * words.rate:.2f}",
                     f"{100 * chars.rate:.2f}", spread])
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy, torch and numba are imported
    global np, torch  # imported only now, so that the thread settings above apply
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from asr.text import Vocabulary
    from asr.lm.weights_file import decoding_config

    path = save_log_probs(args) if args.model else Path(args.logprobs)
    if args.only_save:
        return 0
    data = torch.load(path, weights_only=True)
    vocab = Vocabulary(tuple(data["vocab"]))
    log_probs = [lp.float().numpy() for lp in data["log_probs"]][: args.limit]  # each (T, V)
    references = list(data["references"])[: args.limit]
    durations = data.get("durations")
    audio_seconds = sum(durations[: args.limit]) if durations else None
    if not log_probs:
        print("bench_decode: the log-probs file holds no utterances", file=sys.stderr)
        return 2
    alpha, beta = args.alpha, args.beta
    if args.lm and (alpha is None or beta is None) and data.get("checkpoint"):
        config, note = decoding_config(data["checkpoint"], lm=args.lm, alpha=alpha, beta=beta,
                                       beam_width=args.beam_widths[0])
        alpha, beta = config.alpha, config.beta
        print(f"bench_decode: {note}", file=sys.stderr)
    ctx = {"vocab": vocab, "lm": args.lm, "alpha": alpha if alpha is not None else 0.5,
           "beta": beta if beta is not None else 1.0}
    names = args.decoders.split(",") if args.decoders else list(DECODERS)
    unknown = set(names) - set(DECODERS)
    if unknown:
        print(f"bench_decode: unknown decoder(s) {sorted(unknown)}; choose from {', '.join(DECODERS)}", file=sys.stderr)
        return 2

    frames = sum(len(lp) for lp in log_probs)
    audio = f"{audio_seconds / 60:.1f} min of audio, " if audio_seconds else ""
    print(f"{len(log_probs)} utterances ({audio}{frames} frames, {len(vocab)} tokens); "
          f"beam width {args.beam_width}; LM {args.lm or 'none'}"
          + (f" (alpha {ctx['alpha']:g}, beta {ctx['beta']:g})" if args.lm else "")
          + f"; {args.threads} thread(s); {platform.machine()}, Python {platform.python_version()}")
    header = ["decoder", "beam", "setup s", "utt/s", "RTF", "WER %", "CER %", "note"]
    rows = []
    for width in args.beam_widths:
        here = [n for n in names if n != "greedy" or width == args.beam_widths[0]]  # greedy has no beam: once
        for name, row in zip(here, run_all(here, {**ctx, "beam_width": width}, log_probs, references,
                                          audio_seconds, args.repeats)):
            rows.append([row[0], "—" if name == "greedy" else str(width), *row[1:]])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
