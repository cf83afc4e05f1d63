"""Tokenizers: lossless round trips on any text, documented replacements, byte lengths, safe loading."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tauformer.errors import ConfigError
from tauformer.tokenizer import ByteTokenizer, BPETokenizer, clean_text, load_tokenizer, train_bpe

SAMPLE = ["The quick brown fox jumps over the lazy dog.\n\n", "def f(x):\n    return x * 2\n",
          "naïve café ünïcödé λ-attention 日本語 🤖\n", "for i in range(10): print(i)\n"] * 20


@pytest.fixture(scope="module")
def bpe():
    return train_bpe(SAMPLE, 400, min_frequency=1)


def test_bpe_merges_pieces_and_alphabet_covers_every_byte(bpe):
    assert 256 < bpe.vocab_size <= 400
    ids = bpe.encode("The quick brown fox")
    assert len(ids) < len("The quick brown fox")  # merged pieces, not bytes
    assert any(len(bpe.token_bytes(i)) > 1 for i in ids)
    assert sorted(len(bpe.token_bytes(i)) for i in range(256)) == [1] * 256


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_round_trip_is_lossless_on_arbitrary_text(bpe, text):
    expected = clean_text(text)
    for tok in (bpe, ByteTokenizer()):
        ids = tok.encode(text)
        assert tok.decode(ids) == expected
        assert int(tok.byte_lengths()[ids].sum()) == len(expected.encode("utf-8"))  # bits/byte denominator


def test_lone_surrogates_become_one_replacement_character_each(bpe):
    assert clean_text("a\ud800b\udfffc") == "a\ufffdb\ufffdc"
    assert bpe.decode(bpe.encode("x\udc80")) == "x\ufffd"
    assert clean_text("plain") == "plain"


def test_a_cut_multibyte_character_decodes_with_a_replacement(bpe):
    ids = ByteTokenizer().encode("é")  # two bytes
    assert ByteTokenizer().decode(ids[:1]) == "\ufffd"
    lead = next(i for i in range(bpe.vocab_size) if bpe.token_bytes(i) == b"\xc3")  # é's first byte alone
    assert bpe.decode(bpe.encode("a") + [lead]) == "a\ufffd"


def test_token_labels_show_pieces(bpe):
    piece = next(i for i in bpe.encode(" quick") if len(bpe.token_bytes(i)) > 1)
    assert bpe.token_label(piece).startswith("·")  # a leading space
    assert ByteTokenizer().token_label(10) == "⏎" and ByteTokenizer().token_label(0xC3) == "\\xc3"


def test_tokenizer_file_is_checked_against_its_hash(tmp_path, bpe):
    (tmp_path / "tokenizer.json").write_text(bpe.to_json())
    assert load_tokenizer(bpe.record(), tmp_path).fingerprint == bpe.fingerprint
    assert isinstance(load_tokenizer("bytes", tmp_path), ByteTokenizer)
    other = train_bpe(SAMPLE[:4], 300, min_frequency=1)
    (tmp_path / "tokenizer.json").write_text(other.to_json())
    with pytest.raises(ConfigError, match="does not match"):
        load_tokenizer(bpe.record(), tmp_path)
    (tmp_path / "tokenizer.json").write_text(json.dumps({"not": "a tokenizer"}))
    with pytest.raises(ConfigError, match="tokenizer.json"):
        load_tokenizer({"kind": "bpe"}, tmp_path)
    with pytest.raises(ConfigError, match="vocabulary needs more"):
        train_bpe(SAMPLE, 100)
    assert isinstance(BPETokenizer(bpe.to_json()), BPETokenizer)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000).filter(lambda b: b"\x00" not in b))
def test_files_with_invalid_utf8_read_as_documented(tmp_path_factory, bpe, data):
    """A text file's bytes are read as bytes.decode("utf-8", "replace") would (each invalid
    sequence -> U+FFFD), and the BPE tokens of that text decode back to it."""
    from tauformer.sources import CorpusStats, iter_documents

    path = tmp_path_factory.mktemp("bytes") / "x.txt"
    path.write_bytes(data)
    stats = CorpusStats()
    text = "".join(iter_documents([path], stats=stats))
    expected = data.decode("utf-8", "replace")
    assert text == (expected if expected.strip() else "")
    assert stats.bytes_read == len(data)
    try:
        data.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    assert (stats.replaced_bytes > 0) == (not valid)
    assert bpe.decode(bpe.encode(text)) == text
