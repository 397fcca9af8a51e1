"""`ponder.optimize`: making copies and choosing a format (llama.cpp faked, except in the
integration test that requantizes the real SmolLM2 file)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import ponder.optimize as optimize
from ponder.catalog import COPY_FORMATS, format_label
from ponder.config import models_dir
from ponder.copies import copies_dir, read_record
from ponder.errors import InputError
from ponder.optimize import Measurement, auto, make_copy, normalize_format, passes
from ponder.registry import ModelEntry, parse_registry
from tests.models import smollm2_path
from tests.registry import test_copies as fixtures


@pytest.fixture
def entry() -> ModelEntry:
    return parse_registry(fixtures.TOML).get("coder")


@pytest.fixture
def fake_quantize(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, str]]:
    """Replace llama.cpp's quantizer: the 'copy' is the source bytes tagged with the format."""
    calls: list[tuple[Path, str]] = []

    def quantize(src: Path, dst: Path, fmt: str, threads: int | None = None) -> None:
        calls.append((src, fmt))
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes() + fmt.encode())

    monkeypatch.setattr(optimize, "quantize", quantize)
    return calls


def measured(table: dict[str, tuple[int, float]]) -> optimize.Measure:
    """A measure function answering (correct checks, tokens/s) per format."""

    def measure(path: Path, fmt: str, threads: int | None = None) -> Measurement:
        assert path.is_file()
        correct, rate = table[fmt]
        return Measurement(fmt, 10.0, int(rate * 10), correct, 8)

    return measure


def test_normalize_format() -> None:
    assert normalize_format("q4_0") == "Q4_0"
    assert normalize_format(" Auto ") == "auto"
    assert normalize_format("q4_0-pure") == normalize_format("Q4_0_PURE") == "Q4_0_PURE"
    assert normalize_format("q4_0-out-iq4_nl") == "Q4_0_OUT_IQ4_NL"
    with pytest.raises(InputError, match="unknown format 'q2_k'"):
        normalize_format("q2_k")


def test_make_copy_records_its_own_checksum(entry: ModelEntry, fake_quantize: list) -> None:
    original = fixtures.install_original()
    record = make_copy(entry, original, "Q8_0")
    copy = Path(record.path)
    assert copy.parent == copies_dir() and copy.name == "coder-q4_k_m.Q8_0.gguf"
    assert record.sha256 == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert (record.size, record.source_sha256) == (copy.stat().st_size, fixtures.ORIGINAL_SHA)
    assert read_record("coder") == record
    assert original.read_bytes() == fixtures.ORIGINAL


def test_a_new_copy_replaces_the_old_file(entry: ModelEntry, fake_quantize: list) -> None:
    original = fixtures.install_original()
    old = Path(make_copy(entry, original, "Q8_0").path)
    new = Path(make_copy(entry, original, "Q4_0").path)
    assert new.is_file() and not old.exists()


def test_passes_allows_one_miss() -> None:
    base = Measurement("Q4_K_M", 1, 1, 6, 8)
    assert passes(Measurement("Q4_0", 1, 1, 5, 8), base)
    assert not passes(Measurement("Q4_0", 1, 1, 4, 8), base)


def test_auto_keeps_the_fastest_copy_that_passes(entry: ModelEntry,
                                                  fake_quantize: list) -> None:
    original = fixtures.install_original()
    seen: list[str] = []
    result = auto(entry, original, measure_fn=measured(
        {"Q4_K_M": (6, 50.0), "Q4_0": (3, 90.0), "IQ4_NL_MIX": (6, 55.0), "Q8_0": (6, 60.0)}),
        report=lambda m: seen.append(m.format))
    assert seen == ["Q4_K_M", "Q4_0", "IQ4_NL_MIX", "Q8_0"]  # pure copies only by name
    assert result.kept is not None and result.kept.format == "Q8_0"  # Q4_0 failed the check
    assert read_record("coder") == result.kept
    assert [m["format"] for m in result.kept.measurements["auto"]] == seen
    assert sorted(p.name for p in copies_dir().iterdir()) == [
        "coder-q4_k_m.Q8_0.gguf", "coder.json"]  # the scratch copies are gone


def test_auto_keeps_nothing_when_the_download_is_fastest(entry: ModelEntry,
                                                         fake_quantize: list) -> None:
    original = fixtures.install_original()
    make_copy(entry, original, "Q4_0")
    result = auto(entry, original, measure_fn=measured(
        {"Q4_K_M": (6, 90.0), "Q4_0": (6, 80.0), "IQ4_NL_MIX": (6, 85.0), "Q8_0": (6, 60.0)}))
    assert result.kept is None
    assert read_record("coder") is None
    assert not any(copies_dir().iterdir())


@pytest.mark.integration
def test_real_requantized_copy_loads_and_answers(tmp_path: Path) -> None:
    from ponder.engines.base import Sampling, generate
    from ponder.engines.llamacpp import LlamaCppEngine
    from ponder.registry import load_registry

    entry = load_registry().get("smollm2-135m")
    original = models_dir() / entry.file
    original.parent.mkdir(parents=True, exist_ok=True)
    original.symlink_to(smollm2_path())
    record = make_copy(entry, original, "Q8_0", threads=1)
    copy = Path(record.path)
    assert record.sha256 == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert record.source_sha256 == entry.sha256
    with LlamaCppEngine(copy, n_ctx=256, n_slots=1, n_threads=1) as engine:
        (out,) = generate(engine, engine.chat_prompt([{"role": "user", "content": "Hi"}]),
                          Sampling(temperature=0.0, max_tokens=8))
    assert out.tokens > 0
    measurement = optimize.measure(copy, "Q8_0", threads=1)
    assert measurement.total == len(optimize.CHECKS) and measurement.tokens > 0


def test_every_format_reads_back_from_its_label() -> None:
    assert format_label("Q4_0_OUT_IQ4_NL") == "q4_0-out-iq4_nl"
    assert all(normalize_format(format_label(fmt)) == fmt for fmt in COPY_FORMATS)


@pytest.mark.integration
def test_an_out_copy_writes_the_output_layer_in_the_named_type(tmp_path: Path) -> None:
    """Q4_0_OUT_IQ4_NL: the body in Q4_0, the output layer (SmolLM2's tied embedding) in
    IQ4_NL, llama.cpp's non-linear 4.5-bit type."""
    import gguf

    from ponder.optimize import quantize

    copy = tmp_path / "copy.gguf"
    quantize(smollm2_path(), copy, "Q4_0_OUT_IQ4_NL", threads=1)
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(copy).tensors}
    assert types["token_embd.weight"] == "IQ4_NL"
    assert types["blk.0.attn_q.weight"] == types["blk.0.ffn_down.weight"] == "Q4_0"


@pytest.mark.integration
def test_a_pure_copy_puts_the_output_layer_in_q4_0_too(tmp_path: Path) -> None:
    """SmolLM2's tied embedding is Q8_0 in a plain Q4_0 copy (its width, 576, is no multiple
    of Q6_K's 256-wide blocks) and Q4_0 in a pure one: the pure file is smaller."""
    from ponder.optimize import quantize

    plain, pure = tmp_path / "plain.gguf", tmp_path / "pure.gguf"
    quantize(smollm2_path(), plain, "Q4_0", threads=1)
    quantize(smollm2_path(), pure, "Q4_0_PURE", threads=1)
    embedding = 49152 * 576  # vocabulary x width, the tied token embedding
    saved = plain.stat().st_size - pure.stat().st_size
    assert saved == pytest.approx(embedding * (34 - 18) / 32, rel=0.02)  # Q8_0 -> Q4_0 bytes
