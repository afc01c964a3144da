import pytest

from asr.text import BLANK, UnknownCharacterError, Vocabulary, normalize_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello, world!", "HELLO WORLD"),
        ("  don't   stop  ", "DON'T STOP"),
        ("Café déjà-vu", "CAFE DEJA VU"),
        ("Room 42", "ROOM FORTY TWO"),
        ("1,042 and 7", "ONE THOUSAND FORTY TWO AND SEVEN"),
        ("the 3rd, 12th and 21st", "THE THIRD TWELFTH AND TWENTY FIRST"),
        ("2.5% of 1000000", "TWO POINT FIVE PERCENT OF ONE MILLION"),
        ("call 007 or 12345678901234", "CALL ZERO ZERO SEVEN OR ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE ZERO ONE "
         "TWO THREE FOUR"),
        ("1999 and 20th", "ONE THOUSAND NINE HUNDRED NINETY NINE AND TWENTIETH"),
        ("'quoted' words", "QUOTED WORDS"),
        ("It\u2019s", "IT'S"),
        ("", ""),
        ("?!", ""),
    ],
)
def test_normalize(raw, expected):
    assert normalize_text(raw) == expected
    assert normalize_text(expected) == expected  # idempotent


def test_a_number_too_long_to_convert_is_read_digit_by_digit():
    assert normalize_text("9" * 5000) == " ".join(["NINE"] * 5000)
    assert normalize_text("1." + "5" * 5000 + " 7th") == "ONE POINT " + " ".join(["FIVE"] * 5000) + " SEVENTH"


def test_round_trip():
    vocab = Vocabulary()
    text = "THE QUICK BROWN FOX DIDN'T JUMP OVER THE LAZY DOG"
    ids = vocab.encode(text)
    assert vocab.blank not in ids
    assert vocab.decode(ids) == text
    assert vocab.decode([vocab.blank] + ids + [vocab.blank]) == text
    assert vocab.tokens[0] == BLANK and len(vocab) == 29


def test_unknown_character():
    with pytest.raises(UnknownCharacterError, match="'1'"):
        Vocabulary().encode("A1")
