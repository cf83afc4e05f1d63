"""Tokenizer, bundled corpus and batches."""

import pytest
import torch

from tauformer.data import ByteTokenizer, TokenBatches, load_corpus, load_paragraphs, split_tokens
from tauformer.errors import ConfigError


def test_byte_tokenizer_round_trip_including_non_ascii():
    tok = ByteTokenizer()
    text = "naïve λ-attention ⏎\n"
    ids = tok.encode(text)
    assert all(0 <= i < 256 for i in ids) and tok.decode(ids) == text
    assert tok.token_label(ord("a")) == "a" and tok.token_label(10) == "⏎"


def test_bundled_corpus_is_large_english_text():
    text = load_corpus()
    assert 400_000 < len(text) < 600_000
    assert "for" in text and "def" in text
    paragraphs = load_paragraphs()
    assert len(paragraphs) > 1000 and all(len(p) >= 40 for p in paragraphs)


def test_split_is_deterministic_and_disjoint():
    ids = torch.arange(1000)
    train, val = split_tokens(ids, 0.1)
    assert len(val) == 100 and torch.equal(torch.cat([train, val]), ids)


def test_batches_are_shifted_windows_and_eval_batches_repeat():
    batches = TokenBatches("abcdefghij" * 100, block_size=16)
    x, y = batches.batch("train", 4, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16)
    assert torch.equal(x[:, 1:], y[:, :-1])
    a = batches.eval_batches(2, 3, seed=1)
    b = batches.eval_batches(2, 3, seed=1)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, b))


def test_data_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.txt: no such data file"):
        load_corpus(tmp_path / "missing.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("café".encode("latin-1"))
    with pytest.raises(ConfigError, match="latin1.txt: not UTF-8"):
        load_corpus(bad)
    with pytest.raises(ConfigError, match="fewer than block_size"):
        TokenBatches("short text", block_size=64, source="short.txt")
