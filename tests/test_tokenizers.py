import numpy as np
import pytest

from charnn.errors import CharnnError
from charnn.text.corpus import read_text
from charnn.text.tokenizers import CharTokenizer, SentencePieceTokenizer, tokenizer_from_state

MIXED = "Café déjà vu — naïve\n東京で寿司 🍣🎉\nemoji 👩‍💻 done\n"


def test_char_tokenizer_round_trips_accents_cjk_and_emoji():
    tok = CharTokenizer.fit([MIXED])
    ids = tok.encode(MIXED)
    assert len(ids) == len(MIXED)
    assert tok.decode(ids) == MIXED
    assert b"".join(tok.token_bytes[i] for i in ids).decode() == MIXED


def test_char_tokenizer_names_unknown_characters():
    tok = CharTokenizer.fit(["abc"])
    with pytest.raises(CharnnError, match="'z'"):
        tok.encode("abz")
    assert tok.unknown_chars("abzé") == ["z", "é"]


def test_char_specials_take_first_ids_and_decode_to_nothing():
    tok = CharTokenizer.fit(["ab"], specials=["<pad>", "<eos>"])
    assert tok.special_id("<eos>") == 1
    assert tok.encode("ab") == [2, 3]
    assert tok.decode([2, 1, 3, 0]) == "ab"
    assert tok.char_lengths().tolist() == [0, 0, 1, 1]


def test_char_tokenizer_state_round_trip():
    tok = CharTokenizer.fit([MIXED], specials=["<eos>"])
    back = tokenizer_from_state(tok.to_state())
    assert back.encode(MIXED) == tok.encode(MIXED)
    assert back.vocab_size == tok.vocab_size


def test_crlf_and_bom_are_normalised(tmp_path):
    p = tmp_path / "crlf.txt"
    p.write_bytes(b"\xef\xbb\xbfline one\r\nline two\r\n")
    assert read_text(p) == "line one\nline two\n"


def test_crlf_split_across_chunks_is_normalised(tmp_path):
    from charnn.text.corpus import iter_text

    p = tmp_path / "crlf.txt"
    p.write_bytes(b"ab\r\ncd\r\n" * 10)
    text = "".join(iter_text(p, chunk_bytes=3))  # every chunk boundary lands somewhere odd
    assert text == "ab\ncd\n" * 10


@pytest.fixture(scope="module")
def spm_text():
    rng = np.random.default_rng(0)
    syllables = ["al", "pha", "be", "ta", "gam", "ma", "del", "ri", "ver", "sto", "ne", "é", "東", "京", "ïv"]
    words = ["".join(rng.choice(syllables, size=rng.integers(1, 4))) for _ in range(300)]
    lines = [" ".join(rng.choice(words, size=8)) for _ in range(400)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_sentencepiece_round_trips_text_exactly(spm_text, kind):
    tok = SentencePieceTokenizer.fit([spm_text], kind, 400)
    ids = tok.encode_array(spm_text)
    assert len(ids) < len(spm_text)  # it really merges characters
    assert tok.decode(ids) == spm_text
    # characters per token add up to the characters of the text (bits/char stays honest)
    assert tok.char_lengths()[ids].sum() == len(spm_text)


def test_sentencepiece_byte_fallback_encodes_unseen_characters(spm_text):
    tok = SentencePieceTokenizer.fit([spm_text], "bpe", 400)
    unseen = "Zebra ✓ ß"
    assert tok.decode(tok.encode(unseen)) == unseen
    assert tok.unknown_chars(unseen) == []


def test_sentencepiece_state_round_trip_and_specials(spm_text):
    tok = SentencePieceTokenizer.fit([spm_text], "bpe", 400, specials=["<sep>"])
    back = tokenizer_from_state(tok.to_state())
    assert back.encode(spm_text[:200]) == tok.encode(spm_text[:200])
    sep = back.special_id("<sep>")
    assert back.token_bytes[sep] == b""


def test_sentencepiece_vocab_too_large_is_a_clear_error():
    with pytest.raises(CharnnError, match="--vocab-size"):
        SentencePieceTokenizer.fit(["tiny text here\n"], "bpe", 5000)


def test_sentencepiece_vocab_too_small_is_a_clear_error():
    with pytest.raises(CharnnError, match="too small"):
        SentencePieceTokenizer.fit(["tiny text here\n"], "bpe", 50)
