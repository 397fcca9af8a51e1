"""The ``hf`` source: a file of a Hugging Face repository, downloaded into the hub cache."""

from __future__ import annotations

import contextlib
from pathlib import Path

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from ponder.config import hf_cache_dir
from ponder.errors import DownloadError, ModelFileError
from ponder.registry import ModelEntry, Source
from ponder.sources.verification import verify


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


def pull_hf(entry: ModelEntry, source: Source, progress: bool) -> Path:
    """Download ``source`` into the hub cache and return its verified path."""
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
        remove_hf_file(path)  # a bad blob must not shadow the next download attempt
        raise
    return path


def remove_hf_file(path: Path) -> list[Path]:
    """Remove a hub-cache snapshot entry and the blob it points to."""
    removed: list[Path] = []
    blob = path.resolve()
    for p in (path, blob):
        if p.is_file() or p.is_symlink():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed
