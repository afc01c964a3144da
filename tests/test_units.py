"""Units other than characters: word pieces (sentencepiece) and phones (a lexicon), in the
vocabulary, the targets training learns, checkpoints and ONNX-free decoding."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from asr.checkpoint import load_model, read_checkpoint, save_checkpoint
from asr.config import ExperimentConfig
from asr.data import SpeechDataset, Utterance
from asr.decode import DecodingConfig, GreedyDecoder, build_decoder
from asr.model import AcousticModel, ModelConfig
from asr.text import BLANK, WORD_SEP, Vocabulary
from asr.units import (
    TextConfig,
    UnitsError,
    espeak_lexicon,
    pronunciations,
    read_lexicon,
    spoken_pronunciations,
    target_units,
    train_sentencepiece,
    vocabulary_for,
)

TEXTS = ["THE CAT SAT ON THE MAT", "A DOG SAT ON A LOG", "THE CAT AND THE DOG", "CATS AND DOGS ARE ANIMALS",
         "ON THE MAT SAT A CAT", "LOGS AND MATS"] * 5
LEXICON = """THE D @
THE D i:
CAT k a t
SAT s a t
ON 0 n
MAT m a t
A @
A eI
"""


def _phone_vocab(tmp_path: Path) -> Vocabulary:
    (tmp_path / "lexicon.txt").write_text(LEXICON)
    return vocabulary_for(TextConfig(units="phones", lexicon=str(tmp_path / "lexicon.txt")))


def test_word_pieces_round_trip_any_normalised_text(tmp_path: Path) -> None:
    model = train_sentencepiece(TEXTS, 24, tmp_path / "pieces.model")
    vocab = vocabulary_for(TextConfig(units="bpe", bpe_model=str(model)))
    assert vocab.tokens[0] == BLANK and len(vocab) == 25 and vocab.spells_words
    for text in ["THE CAT SAT ON THE MAT", "DOGS ARE ANIMALS", "MAT"]:
        ids = vocab.encode(text)
        assert ids and 0 not in ids  # never the blank
        assert " ".join(vocab.decode(ids).split()) == text
    # A greedy decoder of word pieces still prints words.
    ids = vocab.encode("THE CAT")
    one_hot = torch.full((1, len(ids) * 2, len(vocab)), -30.0)
    for t, i in enumerate(ids):
        one_hot[0, 2 * t, i] = 0.0
        one_hot[0, 2 * t + 1, 0] = 0.0
    assert GreedyDecoder(vocab)(one_hot, torch.tensor([len(ids) * 2]))[0].text == "THE CAT"


def test_a_bad_sentencepiece_model_or_lexicon_is_one_user_error(tmp_path: Path) -> None:
    (tmp_path / "bad.model").write_bytes(b"not a model")
    with pytest.raises(UnitsError, match="not a sentencepiece model"):
        vocabulary_for(TextConfig(units="bpe", bpe_model=str(tmp_path / "bad.model")))
    (tmp_path / "bad.txt").write_text("WORD\n")
    with pytest.raises(UnitsError, match="a word and its phones"):
        read_lexicon(tmp_path / "bad.txt")
    with pytest.raises(UnitsError, match="no such lexicon"):
        read_lexicon(tmp_path / "missing.txt")
    with pytest.raises(UnitsError, match="needs text.lexicon"):
        vocabulary_for(TextConfig(units="phones"))


def test_phone_targets_come_from_the_row_else_the_lexicon(tmp_path: Path) -> None:
    vocab = _phone_vocab(tmp_path)
    assert not vocab.spells_words and WORD_SEP in vocab.tokens
    assert set(vocab.tokens) == {BLANK, WORD_SEP, "D", "@", "i:", "k", "a", "t", "s", "0", "n", "m", "eI"}
    # The row's own phones (as spoken) win; otherwise each word's first pronunciation.
    assert target_units(vocab, "THE CAT", "D i: | k a t") == "D i: | k a t"
    assert target_units(vocab, "THE CAT") == "D @ | k a t"
    assert target_units(vocab, "THE DOG") is None  # DOG is not in the lexicon
    ids = vocab.encode("D @ | k a t")
    assert vocab.decode(ids) == "D @ | k a t"
    utt = Utterance("u", "/nonexistent.flac", 1.0, "THE CAT", "s", phones="D i: | k a t")
    dataset = SpeechDataset([utt], vocab)
    assert dataset.vocab.encode(target_units(vocab, utt.text, utt.phones)) == vocab.encode("D i: | k a t")
    # Every word and pronunciation of the lexicon, as unit ids, for a lexicon search.
    table = pronunciations(vocab)
    assert sorted(table) == ["A", "CAT", "MAT", "ON", "SAT", "THE"]
    assert len(table["THE"]) == 2 and len(table["A"]) == 2


def test_pronunciations_in_running_speech_need_aligned_rows_seen_often() -> None:
    rows = [("THE CAT", "D @2 | k a t")] * 3 + [("ON THE MAT", "0 n D @2 | m a t")] * 5 + [("A CAT", "@ | k a t")]
    pairs = spoken_pronunciations(rows)
    assert ("THE", ("D", "@2")) in pairs and ("CAT", ("k", "a", "t")) in pairs
    # Rows whose groups do not line up with their words teach nothing; rare pairs do not count.
    assert all(word != "ON" for word, _ in pairs)
    assert ("A", ("@",)) not in pairs


@pytest.mark.parametrize("units", ["bpe", "phones"])
def test_checkpoints_carry_the_units_and_decode_with_them(tmp_path: Path, units: str) -> None:
    if units == "bpe":
        text = TextConfig(units="bpe", bpe_model=str(train_sentencepiece(TEXTS, 24, tmp_path / "p.model")))
    else:
        (tmp_path / "lexicon.txt").write_text(LEXICON)
        text = TextConfig(units="phones", lexicon=str(tmp_path / "lexicon.txt"))
    vocab = vocabulary_for(text)
    cfg = ExperimentConfig(text=text, model=ModelConfig(hidden=8, layers=1, vocab_size=len(vocab)))
    save_checkpoint(tmp_path / "m.pt", AcousticModel(cfg.model), cfg, vocab)
    # The unit files may go: the checkpoint holds the sentencepiece model or the lexicon.
    Path(text.bpe_model or text.lexicon).unlink()
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.vocab == vocab and loaded.vocab.units == units
    if units == "phones":
        # A phone model decodes words with its own lexicon, no LM or other file needed.
        decoder = build_decoder(loaded.vocab, DecodingConfig("beam", 4))
        ids = vocab.encode("k a t | s a t")
        lp = torch.full((1, 2 * len(ids), len(vocab)), -20.0)
        for t, i in enumerate(ids):
            lp[0, 2 * t, i] = 0.0
            lp[0, 2 * t + 1, 0] = 0.0
        assert decoder(lp.log_softmax(-1), torch.tensor([lp.shape[1]]))[0].text == "CAT SAT"


def test_a_checkpoint_from_before_units_loads_as_characters(tmp_path: Path) -> None:
    cfg = ExperimentConfig(model=ModelConfig(hidden=8, layers=1))
    save_checkpoint(tmp_path / "old.pt", AcousticModel(cfg.model), cfg, Vocabulary())
    raw = read_checkpoint(tmp_path / "old.pt")
    assert "units" not in raw  # character checkpoints are written as they always were
    del raw["config"]["text"]  # and one written before [text] existed reads the same
    torch.save(raw, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt")
    assert loaded.vocab == Vocabulary() and loaded.config.text == TextConfig()
    # And it decodes as before: greedily, to characters.
    lp, lengths = loaded.log_probs(torch.randn(1, 16000) * 0.1, torch.tensor([16000]))
    hyp = build_decoder(loaded.vocab, DecodingConfig())(lp, lengths)[0]
    assert set(hyp.text) <= set(Vocabulary().tokens[1:])


def test_espeak_lexicon_says_words_alone_and_keeps_heard_phones(espeak: str) -> None:
    entries = espeak_lexicon(["CAT", "THE"], ["en-us", "en-gb"])
    words = {w for w, _ in entries}
    assert words == {"CAT", "THE"}
    assert all(pron and WORD_SEP not in pron for _, pron in entries)
    # With rows, only pronunciations made of phones the rows hold are kept.
    rows = [("THE CAT", "D @2 | k a t")] * 3
    heard = espeak_lexicon(["CAT", "THE"], ["en-us"], rows)
    assert ("THE", ("D", "@2")) in heard
    assert all(set(pron) <= {"D", "@2", "k", "a", "t"} for _, pron in heard)


def test_phonemize_gives_one_phone_string_per_text(espeak: str) -> None:
    from asr.corpora.synthetic.phonemes import phone_string, phonemize

    texts = ["THE CAT SAT", "HELLO", "IT IS THREE O'CLOCK", ""]
    out = phonemize(texts, "en-us")
    assert len(out) == 4 and out[3] == ""
    assert out[0].count(WORD_SEP) == 2 and "'" not in out[0]
    assert phone_string("D_@2 k_'a_t s_,a_t") == "D @2 | k a t | s a t"
    assert phone_string("p_'i:_p_@L_:_:") == "p i: p @L"  # a lone length mark is no phone


def test_libespeak_ng_and_the_espeak_ng_command_give_the_same_phones(espeak: str) -> None:
    from asr.corpora.synthetic.espeak import VOICES
    from asr.corpora.synthetic.phonemes import _command_phonemize, _library_phonemize

    texts = ["THE CAT SAT ON THE MAT", "HELLO", "IT IS THREE O'CLOCK", "", "WEDNESDAY", "COLONEL",
             "I READ THE BOOK THAT YOU READ", "A", "ISN'T"]
    if _library_phonemize(texts[:1], "en-us") is None:
        pytest.skip("libespeak-ng not loadable")
    for voice in VOICES:
        assert _library_phonemize(texts, voice) == _command_phonemize(texts, voice, espeak, 2000), voice


def test_bf16_autocast_on_cpu_trains_a_tiny_model_whose_loss_falls() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(n_mels=16, hidden=16, layers=1, stack=2, vocab_size=6)
    model = AcousticModel(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    feats, lengths = torch.randn(4, 40, 16), torch.tensor([40, 36, 32, 40])
    targets, target_lengths = torch.randint(1, 6, (4, 5)), torch.full((4,), 5)
    losses = []
    for _ in range(30):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lp, out_lengths = model(feats, lengths, normalized=True)
        assert lp.dtype == torch.float32  # CTC's log-probabilities stay fp32 under autocast
        loss = torch.nn.functional.ctc_loss(lp.transpose(0, 1), targets, out_lengths, target_lengths)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the weights stay fp32


def test_experiment_config_round_trips_its_text_section() -> None:
    cfg = ExperimentConfig(text=TextConfig(units="phones", lexicon="x.txt"))
    again = ExperimentConfig.from_dict(cfg.to_dict())
    assert again.text == cfg.text and dataclasses.asdict(again) == dataclasses.asdict(cfg)
