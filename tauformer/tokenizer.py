"""Tokenizers: UTF-8 bytes (vocab 256, the default) and byte-level BPE trained with `tokenizers`.

Both map every token id to a fixed byte string, so

- any text round-trips: ``decode(encode(text)) == text`` for every Python string whose UTF-8
  encoding exists; lone surrogates (which have none) are replaced by U+FFFD first (`clean_text`);
- a token sequence that stops inside a multi-byte character decodes with U+FFFD for the broken
  bytes (``errors="replace"``), never raises;
- the number of UTF-8 bytes a token covers is known (`byte_lengths`), which is what bits per
  byte needs (SPEC section 9) to compare runs with different tokenizers.

A BPE tokenizer is stored as the `tokenizers` library's JSON (``tokenizer.json``): loading it
parses JSON only, so it cannot run code. Its identity is the SHA-256 of that JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from .errors import ConfigError

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_KINDS = ("bytes", "bpe")
MAX_UINT16_VOCAB = 1 << 16
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """text with each lone surrogate (not encodable as UTF-8) replaced by one U+FFFD; otherwise unchanged."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)


def piece_label(piece: bytes) -> str:
    """A short printable label of a token's bytes: ⏎ newline, · space, ⇥ tab, \\xNN for bytes that
    are not a whole printable character (control bytes, a fragment of a multi-byte character)."""
    text = piece.decode("utf-8", errors="backslashreplace")
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\n":
            out.append("⏎")
        elif ch == " ":
            out.append("·")
        elif ch == "\t":
            out.append("⇥")
        elif code < 32 or code == 127:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    return "".join(out)


def _gpt2_byte_alphabet() -> dict[str, int]:
    """The byte-level BPE alphabet: one printable character per byte value (GPT-2's mapping)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


class ByteTokenizer:
    """UTF-8 bytes as tokens: encode never fails, decode replaces broken sequences."""

    kind = "bytes"
    name = "bytes"
    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(clean_text(text).encode("utf-8"))

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids) -> str:
        return bytes(int(i) for i in ids if 0 <= int(i) < 256).decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        return bytes([int(token_id)]) if 0 <= int(token_id) < 256 else b""

    def token_label(self, token_id: int) -> str:
        """A short printable label of one token for displays (⏎ newline, · space, \\xNN others)."""
        b = int(token_id)
        if b in (9, 10, 32):
            return piece_label(bytes([b]))
        return chr(b) if 33 <= b < 127 else f"\\x{b:02x}"

    def byte_lengths(self) -> np.ndarray:
        """UTF-8 bytes each token id covers [vocab_size] (all 1)."""
        return np.ones(256, dtype=np.int64)

    def to_json(self) -> str | None:
        """The tokenizer file's text (None: bytes need no file)."""
        return None

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(b"tauformer-bytes").hexdigest()

    def record(self) -> dict:
        return {"kind": self.kind, "vocab_size": self.vocab_size, "sha256": self.fingerprint}


class BPETokenizer:
    """A byte-level BPE tokenizer (the `tokenizers` library): no normaliser, no prefix space, no
    special tokens, so encoding is lossless and each id stands for a fixed byte string."""

    kind = "bpe"

    def __init__(self, json_text: str, *, source: str = TOKENIZER_FILE):
        from tokenizers import Tokenizer

        try:
            self._tok = Tokenizer.from_str(json_text)
        except Exception as err:  # the library raises its own exception types
            raise ConfigError(f"{source}: not a tokenizers JSON file ({str(err).splitlines()[0][:120]})") from None
        self._json = json_text
        self.source = source
        alphabet = _gpt2_byte_alphabet()
        vocab = self._tok.get_vocab()
        self.vocab_size = max(vocab.values()) + 1 if vocab else 0
        table = [b""] * self.vocab_size
        for piece, idx in vocab.items():
            try:
                table[idx] = bytes(alphabet[ch] for ch in piece)
            except KeyError:
                raise ConfigError(f"{source}: token {piece!r} is not byte-level BPE "
                                  "(build it with `python -m tauformer prepare --tokenizer bpe`)") from None
        self._pieces = table
        self.name = f"bpe-{self.vocab_size}"

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(clean_text(text), add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        texts = [clean_text(t) for t in texts]
        encode = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)  # _fast (>= 0.20) skips offsets
        encodings = encode(texts, add_special_tokens=False)
        return [e.ids for e in encodings]

    def token_bytes(self, token_id: int) -> bytes:
        i = int(token_id)
        return self._pieces[i] if 0 <= i < self.vocab_size else b""

    def decode(self, ids) -> str:
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")

    def token_label(self, token_id: int) -> str:
        return piece_label(self.token_bytes(token_id))

    def byte_lengths(self) -> np.ndarray:
        return np.array([len(p) for p in self._pieces], dtype=np.int64)

    def to_json(self) -> str:
        return self._json

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self._json.encode("utf-8")).hexdigest()

    def record(self) -> dict:
        return {"kind": self.kind, "vocab_size": self.vocab_size, "sha256": self.fingerprint}


def train_bpe(texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2) -> BPETokenizer:
    """Train a byte-level BPE of at most vocab_size tokens (>= 257: the 256 bytes come first) on texts.

    The texts are streamed: the trainer keeps word counts, not the corpus.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < 257:
        raise ConfigError(f"--vocab-size {vocab_size}: a BPE vocabulary needs more than the 256 byte tokens")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(_clean_stream(texts), trainer=trainer)
    return BPETokenizer(tok.to_str())


def _clean_stream(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        yield clean_text(text)


def load_tokenizer(record: dict | str | None, directory: str | Path | None = None):
    """The tokenizer a shards directory or checkpoint names: its record ({"kind", "sha256", ...} or
    the older string "bytes"), and for BPE the tokenizer.json in `directory`, checked against the hash."""
    kind = record.get("kind") if isinstance(record, dict) else (record or "bytes")
    if kind == "bytes":
        return ByteTokenizer()
    if kind != "bpe":
        raise ConfigError(f"{directory}: unknown tokenizer {kind!r}; known: {', '.join(TOKENIZER_KINDS)}")
    path = Path(directory or ".") / TOKENIZER_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: missing (the BPE tokenizer this data or checkpoint was made with)")
    try:
        text = path.read_text(encoding="utf-8")
        json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot be read as JSON ({err})") from None
    tok = BPETokenizer(text, source=str(path))
    expected = record.get("sha256") if isinstance(record, dict) else None
    if expected and expected != tok.fingerprint:
        raise ConfigError(f"{path}: does not match the tokenizer recorded beside it "
                          f"(sha256 {tok.fingerprint[:12]} vs {expected[:12]}); it was replaced or edited")
    return tok
