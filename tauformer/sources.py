"""Documents of a corpus, streamed from text files, folders, globs, JSON lines and Parquet.

INPUT is a file, a folder (searched recursively, hidden entries skipped) or a glob; files ending
in SUPPORTED are read in sorted path order, so the same inputs always give the same documents:

- ``.txt`` / ``.md``: UTF-8 text, read line by line. A file is one document, cut at the next blank
  line once a document reaches DOC_BYTES (so a single large file still splits by document).
  Bytes that are not valid UTF-8 become U+FFFD (counted in `CorpusStats.replaced_bytes`); a file
  with a NUL byte in its first 8 KiB is refused as binary.
- ``.jsonl``: one JSON object per line, the document is its ``text_column`` field.
- ``.parquet``: the ``text_column`` column, read in record batches (needs pyarrow).
- ``pydoc_data.topics``: the bundled corpus, its topics cut into documents like a text file.

Nothing is held beyond one document (or one Parquet batch), so a corpus larger than memory works.
"""

from __future__ import annotations

import codecs
import glob
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

SUPPORTED = (".txt", ".md", ".jsonl", ".parquet")
BUNDLED = "pydoc_data.topics"
DOC_BYTES = 4096  # a text file is cut into documents at blank lines once a document is this long
MAX_LINE = 1 << 20  # longer lines are read in pieces of this many bytes
SNIFF_BYTES = 8192


@dataclass
class CorpusStats:
    """Counts gathered while streaming (for the log and meta.json)."""

    files: int = 0
    documents: int = 0
    bytes_read: int = 0
    replaced_bytes: int = 0


def resolve_inputs(inputs: list[str]) -> list[Path | str]:
    """The files named by inputs (files, folders, globs), sorted and deduplicated; BUNDLED passes through.

    Raises ConfigError naming the input when it matches nothing readable.
    """
    found: list[Path | str] = []
    seen: set[str] = set()

    def add(p: Path) -> None:
        key = str(p.resolve())
        if key not in seen:
            seen.add(key)
            found.append(p)

    for raw in inputs:
        if raw == BUNDLED:
            if BUNDLED not in seen:
                seen.add(BUNDLED)
                found.append(BUNDLED)
            continue
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))  # no .git/ etc.
            if not files:
                raise ConfigError(f"{path}: a folder with no {', '.join(SUPPORTED)} files")
            for p in files:
                add(p)
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED:
                raise ConfigError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
                                  f"prepare reads {', '.join(SUPPORTED)}")
            add(path)
        elif glob.has_magic(raw):
            files = sorted(Path(p) for p in glob.glob(raw, recursive=True)
                           if Path(p).is_file() and Path(p).suffix.lower() in SUPPORTED)
            if not files:
                raise ConfigError(f"{raw}: the pattern matches no {', '.join(SUPPORTED)} files")
            for p in files:
                add(p)
        else:
            raise ConfigError(f"{raw}: no such file, folder or pattern")
    return found


def check_readable(files: list[Path | str]) -> None:
    """Refuse binary text / JSON-lines files before any work starts (a NUL byte in the first 8 KiB)."""
    for f in files:
        if f != BUNDLED and Path(f).suffix.lower() in (".txt", ".md", ".jsonl"):
            try:
                with Path(f).open("rb") as fh:
                    _check_not_binary(Path(f), fh.read(SNIFF_BYTES))
            except OSError as err:
                raise ConfigError(f"{f}: cannot read ({err.strerror})") from None


def total_bytes(files: list[Path | str]) -> int:
    """Sum of the files' sizes (for a progress bar); the bundled corpus counts its text."""
    total = 0
    for f in files:
        total += _bundled_size() if f == BUNDLED else Path(f).stat().st_size
    return total


def iter_documents(files: list[Path | str], *, text_column: str = "text", stats: CorpusStats | None = None,
                   on_bytes: Callable[[int], None] | None = None) -> Iterator[str]:
    """Every non-blank document of the files, in order; on_bytes(n) is told of each n bytes read."""
    stats = stats if stats is not None else CorpusStats()
    progress = on_bytes or (lambda n: None)
    for f in files:
        stats.files += 1
        if f == BUNDLED:
            reader = _bundled_documents(progress)
        else:
            suffix = Path(f).suffix.lower()
            if suffix in (".txt", ".md"):
                reader = _text_documents(Path(f), stats, progress)
            elif suffix == ".jsonl":
                reader = _jsonl_documents(Path(f), text_column, progress)
            else:
                reader = _parquet_documents(Path(f), text_column, progress)
        for doc in reader:
            if doc.strip():
                stats.documents += 1
                yield doc


def _bundled_topics() -> list[str]:
    from pydoc_data.topics import topics

    return [topics[key].strip() for key in sorted(topics)]


def _bundled_size() -> int:
    return sum(len(t.encode("utf-8")) + 2 for t in _bundled_topics())


def _bundled_documents(progress) -> Iterator[str]:
    for text in _bundled_topics():
        progress(len(text.encode("utf-8")) + 2)
        yield from _chunked(iter((text + "\n\n").splitlines(keepends=True)))


def _check_not_binary(path: Path, head: bytes) -> None:
    nul = head.find(b"\x00")
    if nul >= 0:
        raise ConfigError(f"{path}: looks binary (NUL byte at offset {nul}); prepare reads UTF-8 text, "
                          f"{', '.join(SUPPORTED)}")


class _ReplacementCounter:
    """A codecs error handler that replaces undecodable bytes by U+FFFD and counts them."""

    name = "tauformer-count-replace"

    def __init__(self):
        self.count = 0
        codecs.register_error(self.name, self)

    def __call__(self, err: UnicodeDecodeError):
        self.count += err.end - err.start
        return "\ufffd", err.end


_COUNTER = _ReplacementCounter()


def _chunked(lines: Iterator[str]) -> Iterator[str]:
    """Lines joined into documents: cut after a blank line once a document has DOC_BYTES characters."""
    parts: list[str] = []
    size = 0
    for line in lines:
        parts.append(line)
        size += len(line)
        if size >= DOC_BYTES and not line.strip():
            yield "".join(parts)
            parts, size = [], 0
    if parts:
        yield "".join(parts)


def _text_documents(path: Path, stats: CorpusStats, progress) -> Iterator[str]:
    before = _COUNTER.count
    try:
        yield from _chunked(_decoded_lines(path, stats, progress))
    finally:
        stats.replaced_bytes += _COUNTER.count - before


def _decoded_lines(path: Path, stats: CorpusStats, progress) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors=_COUNTER.name)
    try:
        with path.open("rb") as fh:
            _check_not_binary(path, fh.read(SNIFF_BYTES))
            fh.seek(0)
            while True:
                line = fh.readline(MAX_LINE)
                if not line:
                    break
                progress(len(line))
                stats.bytes_read += len(line)
                yield decoder.decode(line)
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None


def _jsonl_documents(path: Path, column: str, progress) -> Iterator[str]:
    try:
        with path.open("rb") as fh:
            _check_not_binary(path, fh.read(SNIFF_BYTES))
            fh.seek(0)
            for number, raw in enumerate(fh, start=1):
                progress(len(raw))
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as err:
                    raise ConfigError(f"{path}:{number}: not a JSON line ({err})") from None
                if not isinstance(row, dict) or column not in row:
                    keys = sorted(row) if isinstance(row, dict) else type(row).__name__
                    raise ConfigError(f"{path}:{number}: no {column!r} field (found {keys}); "
                                      "choose the text with --text-column")
                value = row[column]
                if value is None:
                    continue
                if not isinstance(value, str):
                    raise ConfigError(f"{path}:{number}: field {column!r} is {type(value).__name__}, not text")
                yield value
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None


def _parquet_documents(path: Path, column: str, progress) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(f"{path}: reading .parquet needs pyarrow (pip install pyarrow)") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ...
        raise ConfigError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0][:120]})") from None
    names = pf.schema_arrow.names
    if column not in names:
        raise ConfigError(f"{path}: no column {column!r} (columns: {', '.join(names)}); choose one with --text-column")
    size, rows = path.stat().st_size, max(1, pf.metadata.num_rows)
    for batch in pf.iter_batches(batch_size=1024, columns=[column]):
        values = batch.column(0)
        progress(int(size * len(values) / rows))
        for value in values.to_pylist():
            if value is None:
                continue
            if not isinstance(value, str):
                raise ConfigError(f"{path}: column {column!r} holds {type(value).__name__}, not text")
            yield value
