"""Uploaded embeddings and corpora: checked, stored under the cache dir, built into domain memories.

An upload is only ever written to ``<cache_dir>/uploads/<sha256><suffix>`` (the name the
browser sent is never used as a path) and read with the same loaders as the command
line, which never unpickle. Before that, what the file declares (zip members, array
headers, table metadata) is checked against the bounds of :mod:`.upload_checks`, so a zip
bomb is refused without being inflated. The domain memory built from it goes to
``<cache_dir>/domains/<key>/`` where the key hashes the file's content and the build
request, so uploading the same file again finds the finished memory at once. Tables keep
their text and label columns (:mod:`.table_columns`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from tauformer.build_defaults import BUILD_DEFAULTS
from tauformer.errors import DomainError
from tauformer.fsutil import atomic_write_bytes, atomic_write_json

from .cache import content_key
from .domains import DOMAIN_FILE
from .table_columns import table_columns
from .upload_checks import Declared, build_bytes, check_bounds, check_declared, check_memory

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-f]{8,64}")

DEFAULT_MAX_UPLOAD_MB = 50.0
SUFFIXES = (".npy", ".npz", ".safetensors", ".parquet", ".csv", ".txt", ".md")
DEFAULT_DIM = 32
BUILD_PHASES = ("read", "reduce", "cluster", "graph", "laplacian", "save")
BUILD_VERSION = 3  # 3: graphs with no edges or more than D/4 components are refused
BUILD_PARAMS = dict(BUILD_DEFAULTS)
"""Graph settings for uploads: the builder's defaults, the same as ``domain build``'s."""
UPLOAD_REMEDY = ("the app builds uploads with these settings; build this file with "
                 "`python -m tauformer domain build` and a larger --eps or --topk instead")


@dataclass
class UploadJob:
    """A stored upload and the build asked of it (JSON-able: it travels in a dcc.Store)."""

    sha: str
    suffix: str
    filename: str
    size: int
    dim: int | None  # None: automatic (the run's head dim when it fits, else min(F, 32))
    head_dim: int | None
    key: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> UploadJob:
        """The job a dcc.Store sent back, checked: it comes from the browser, and its sha and
        suffix name a file under the cache dir, so nothing but a sha256 and a known suffix passes."""
        try:
            job = cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except (KeyError, TypeError):
            raise DomainError("the upload request is incomplete; upload the file again") from None
        if not (_HEX64.fullmatch(str(job.sha)) and job.suffix in SUFFIXES and _HEX.fullmatch(str(job.key))):
            raise DomainError("the upload request names no stored upload; upload the file again")
        return job


def upload_dir(cache_dir) -> Path:
    path = Path(cache_dir) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def domain_dir(cache_dir, key: str) -> Path:
    return Path(cache_dir) / "domains" / key


def built_path(cache_dir, path) -> Path | None:
    """``path`` when it is a built upload's directory ``<cache_dir>/domains/<key>``, else None
    (a path that came back from the browser is only trusted this far)."""
    if not isinstance(path, str) or not path:
        return None
    candidate = Path(path)
    key = candidate.name
    if not _HEX.fullmatch(key) or candidate != domain_dir(cache_dir, key):
        return None
    done = domain_dir(cache_dir, key)
    return done if (done / "upload.json").is_file() else None


def display_name(filename: str) -> str:
    """A short, safe domain name from the uploaded file's name."""
    stem = Path(str(filename)).stem
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "upload"
    return cleaned[:48]


def limit_text(max_mb: float) -> str:
    return f"{max_mb:g} MB"


def decode_upload(contents: str | None, filename: str | None, max_mb: float = DEFAULT_MAX_UPLOAD_MB) -> tuple[bytes, str]:
    """The bytes and lower-case suffix of a dcc.Upload ``contents`` data URL, checked.

    Raises
    ------
    DomainError
        No file, an unknown suffix, a file over ``max_mb``, an empty file or broken base64;
        the message names the file.
    """
    name = str(filename or "the upload")
    if not contents:
        raise DomainError(f"{name}: nothing was uploaded")
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise DomainError(f"{name}: unknown format {suffix or '(no suffix)'!r}; upload one of "
                          f"{', '.join(SUFFIXES)}")
    _, _, payload = str(contents).partition(",")
    approx = len(payload) * 3 // 4
    limit = int(max_mb * 1024 * 1024)
    if approx > limit + 4:
        raise DomainError(f"{name}: {approx / 2**20:.1f} MB is over the upload limit of "
                          f"{limit_text(max_mb)} (start the app with --max-upload-mb to change it)")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as err:
        raise DomainError(f"{name}: the upload arrived damaged ({err})") from None
    if not data:
        raise DomainError(f"{name}: the file is empty")
    if len(data) > limit:
        raise DomainError(f"{name}: {len(data) / 2**20:.1f} MB is over the upload limit of "
                          f"{limit_text(max_mb)} (start the app with --max-upload-mb to change it)")
    return data, suffix


def store_upload(cache_dir, data: bytes, suffix: str) -> tuple[str, Path]:
    """Write the bytes as ``uploads/<sha256><suffix>`` (once); returns (sha, path)."""
    sha = hashlib.sha256(data).hexdigest()
    path = upload_dir(cache_dir) / f"{sha}{suffix}"
    if not path.exists():
        atomic_write_bytes(path, data)
    return sha, path


def parse_dim(value) -> int | None:
    """The dim input: a whole number >= 2, or None (automatic) when empty.

    Raises DomainError on anything else.
    """
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DomainError(f"dim must be a whole number >= 2, got {value!r}") from None
    if number != int(number) or number < 2:
        raise DomainError(f"dim must be a whole number >= 2, got {value!r}")
    return int(number)


def receive_upload(cache_dir, contents, filename, *, dim=None, head_dim: int | None = None,
                   max_mb: float = DEFAULT_MAX_UPLOAD_MB) -> UploadJob:
    """Check and store an upload; returns the build job for it (DomainError when refused)."""
    data, suffix = decode_upload(contents, filename, max_mb)
    dim = parse_dim(dim)
    sha, path = store_upload(cache_dir, data, suffix)
    try:
        declared = check_declared(path, suffix, str(filename))
        if declared.n_items and declared.n_features:
            check_memory(str(filename), build_bytes(declared.n_items, declared.n_features))
    except DomainError:
        path.unlink(missing_ok=True)  # refused uploads are not kept
        raise
    return make_job(sha, suffix, str(filename), len(data), dim, head_dim)


def make_job(sha: str, suffix: str, filename: str, size: int, dim: int | None,
             head_dim: int | None) -> UploadJob:
    key = content_key("upload-domain", sha, dim, head_dim if dim is None else None, BUILD_VERSION)
    return UploadJob(sha, suffix, filename, size, dim, head_dim, key)


def resolve_dim(dim: int | None, head_dim: int | None, n_features: int) -> int:
    """The Laplacian size to build: ``dim`` if given, else the run's head dim when it fits,
    else min(F, 32)."""
    if dim is not None:
        if dim > n_features:
            raise DomainError(f"dim {dim} is larger than the embedding's {n_features} features")
        return dim
    if head_dim and 2 <= head_dim <= n_features:
        return int(head_dim)
    return min(n_features, DEFAULT_DIM)


def finished(cache_dir, job: UploadJob) -> Path | None:
    """The built domain directory of ``job`` when it exists already."""
    path = domain_dir(cache_dir, job.key)
    return path if (path / DOMAIN_FILE).is_file() and (path / "upload.json").is_file() else None


def build_upload(cache_dir, job: UploadJob, progress=None) -> Path:
    """Load the stored upload, build its domain memory (with items) and save it; returns its dir.

    ``progress(step, total, text)`` is called between phases. Raises DomainError (or another
    TauformerError) for bad content: NaN rows, a 1-D array, too few items or features...
    """
    from tauformer.domain import build_domain_memory, load_embedding, save_domain_memory
    from tauformer.domain.builder import connectivity_problem

    done = finished(cache_dir, job)
    if done is not None:
        return done
    report = progress or (lambda step, total, text: None)
    total = len(BUILD_PHASES)
    source = upload_dir(cache_dir) / f"{job.sha}{job.suffix}"
    report(0, total, f"reading {job.filename}" + (" and embedding its text" if job.suffix in (".txt", ".md") else ""))
    if not source.is_file():
        raise DomainError(f"{job.filename}: the stored upload is gone (evicted from the cache); upload it again")
    check_declared(source, job.suffix, job.filename)  # again: the file may predate these checks
    columns = table_columns(source, job.suffix)
    try:
        emb = load_embedding(source, **columns)
    except DomainError as err:
        raise DomainError(str(err).replace(str(source), job.filename)) from None
    check_bounds(job.filename, Declared(emb.n_items, emb.n_features, emb.X.nbytes), "holds")
    dim = resolve_dim(job.dim, job.head_dim, emb.n_features)
    if emb.n_items < 2:
        raise DomainError(f"{job.filename}: need at least 2 items, got {emb.n_items}")

    def phase_report(phase, done_, total_):
        if phase in BUILD_PHASES and done_ == 0:
            step = BUILD_PHASES.index(phase)
            report(step, total, f"{phase} ({emb.n_items:,} items x {emb.n_features} features -> D={dim})")

    memory = build_domain_memory(emb, dim=dim, keep_items=True, progress=phase_report,
                                 name=display_name(job.filename), **BUILD_PARAMS)
    memory.source["path"] = job.filename
    problem = connectivity_problem(memory, UPLOAD_REMEDY)
    if problem:
        raise DomainError(f"{job.filename}: {problem}")
    report(total - 1, total, "saving")
    out = domain_dir(cache_dir, job.key)
    save_domain_memory(memory, out, keep_items=True)
    atomic_write_json(out / "upload.json", {**job.to_dict(), "resolved_dim": dim, **columns})  # its presence means "built"
    report(total, total, "done")
    return out


def upload_record(path: Path) -> dict:
    """The upload.json written next to a built domain (filename, sha, dims)."""
    return json.loads((Path(path) / "upload.json").read_text())
