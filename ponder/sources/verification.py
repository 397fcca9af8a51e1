"""Checking a model file before use: size, GGUF header, and a sha256 hashed once.

After the first full hash a marker keyed by size and mtime records the result, so later
runs only ``stat`` the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from ponder.config import home_dir, models_dir
from ponder.errors import ModelFileError
from ponder.registry import GGUF_MAGIC, ModelEntry
from ponder.sources.progress import ByteBar

CHUNK = 8 * 1024 * 1024
"""Bytes read (or copied) at a time."""
APPROX_SIZE_TOLERANCE = 0.10
"""Relative tolerance when the registry only knows a rounded size (``size_exact = false``)."""


def marker_path(path: Path) -> Path:
    """Next to the file in ponder's models dir; under home_dir()/verified for files that
    live elsewhere (the HF cache, user paths) so we never write into foreign trees."""
    if path.parent.resolve() == models_dir().resolve():
        return path.with_name(path.name + ".verified")
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    return home_dir() / "verified" / f"{key}.json"


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _marker_ok(path: Path, sha256: str) -> bool:
    try:
        data = json.loads(marker_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data == {**_stat_key(path), "sha256": sha256}


def write_marker(path: Path, sha256: str) -> None:
    """Record that ``path``, at its present size and mtime, has this sha256."""
    marker = marker_path(path)
    with contextlib.suppress(OSError):  # a read-only location only costs a re-hash later
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({**_stat_key(path), "sha256": sha256}), encoding="utf-8")


def _fix_hint(entry: ModelEntry) -> str:
    if not entry.sources:  # an optimized copy made here: make it again
        return f"ponder models optimize {entry.id} --format {entry.quant.lower()}"
    return f"ponder models rm {entry.id} --yes && ponder models pull {entry.id}"


def check_size(path: Path, size: int, entry: ModelEntry) -> None:
    """Raise ModelFileError unless ``size`` is the entry's (exactly, or within tolerance)."""
    if entry.size_exact:
        ok = size == entry.size
    else:
        ok = abs(size - entry.size) <= entry.size * APPROX_SIZE_TOLERANCE
    if not ok:
        expected = f"{entry.size}" if entry.size_exact else f"about {entry.size}"
        raise ModelFileError(
            f"{path} has {size} bytes, expected {expected} (truncated or wrong file)",
            hint=_fix_hint(entry),
        )


def hash_file(path: Path, progress: bool) -> str:
    """The file's sha256 (hex), with a progress bar when ``progress``."""
    digest = hashlib.sha256()
    with path.open("rb") as fh, ByteBar(progress, path.stat().st_size, "verifying") as bar:
        while block := fh.read(CHUNK):
            digest.update(block)
            bar.advance(len(block))
    return digest.hexdigest()


def verify(path: Path, entry: ModelEntry, progress: bool = False) -> None:
    """Check a model file before use; raises ModelFileError when it is not trustworthy.

    Always: exists, size (exact or within tolerance), GGUF header. When the registry has a
    sha256: a full hash the first time, then a marker keyed by size+mtime makes it instant.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            magic = fh.read(4)
    except FileNotFoundError:
        raise ModelFileError(
            f"model file {path} is missing", hint=f"ponder models pull {entry.id}"
        ) from None
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    check_size(path, size, entry)
    if magic != GGUF_MAGIC:
        raise ModelFileError(f"{path} is not a GGUF file (bad header)", hint=_fix_hint(entry))
    if not entry.sha256 or _marker_ok(path, entry.sha256):
        return
    if hash_file(path, progress) != entry.sha256:
        raise ModelFileError(f"{path} failed its sha256 check", hint=_fix_hint(entry))
    write_marker(path, entry.sha256)
