"""`ponder models optimize`, `pull --quant`, and `--no-optimize` through the CLI (llama.cpp
quantizer and downloads faked)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import ponder.cli.models as models_cli
import ponder.engines as engines
import ponder.optimize as optimize
import ponder.registry as registry
import ponder.sources.huggingface as hf_source
from ponder.cli import app
from ponder.config import models_dir
from ponder.copies import copies_dir, read_record
from ponder.engines import EngineOptions, Loaded, load_engine, register_engine
from ponder.engines.scripted import ScriptedEngine
from ponder.errors import InputError, ModelNotInstalledError
from ponder.registry import Registry, parse_registry
from tests.registry import test_copies as fixtures

runner = CliRunner()
VARIANT = b"GGUF" + b"\7" * 76


@pytest.fixture(autouse=True)
def fake_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("PONDER_HF_CACHE", str(tmp_path / "hf-cache"))
    toml = fixtures.TOML.replace('sha256 = "' + "a" * 64,
                                 'sha256 = "' + hashlib.sha256(VARIANT).hexdigest())
    reg = parse_registry(toml)
    monkeypatch.setattr(models_cli, "load_registry", lambda: reg)
    monkeypatch.setattr("ponder.cli._optimize.load_registry", lambda: reg)
    monkeypatch.setattr(registry, "load_registry", lambda: reg)
    return reg


@pytest.fixture(autouse=True)
def fake_quantize(monkeypatch: pytest.MonkeyPatch) -> None:
    def quantize(src: Path, dst: Path, fmt: str, threads: int | None = None) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes() + fmt.encode())

    monkeypatch.setattr(optimize, "quantize", quantize)


def fake_hf_download(calls: list[dict[str, Any]]) -> Any:
    def download(**kwargs: Any) -> str:
        calls.append(kwargs)
        path = Path(kwargs["cache_dir"]) / kwargs["filename"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(VARIANT)
        return str(path)

    return download


def test_optimize_makes_a_copy_that_list_and_info_show() -> None:
    fixtures.install_original()
    result = runner.invoke(models_cli.app, ["optimize", "coder", "--format", "q4_0"])
    assert result.exit_code == 0, result.output
    copy = copies_dir() / "coder-q4_k_m.Q4_0.gguf"
    sha = hashlib.sha256(copy.read_bytes()).hexdigest()
    assert result.stdout.strip() == f"coder: Q4_0 copy at {copy} (sha256 {sha})"
    assert "published" in result.stderr  # points at the direct download of the format
    listed = runner.invoke(models_cli.app, ["list"]).stdout.splitlines()[0].split("\t")
    assert listed[-1] == "Q4_0 (optimized)"
    info = runner.invoke(models_cli.app, ["info", "coder"]).stdout
    assert f"Q4_0 quantized {copy}" in info and sha in info
    assert re.search(rf"^runs +Q4_0 {re.escape(str(copy))}$", info, re.MULTILINE)
    data = json.loads(runner.invoke(models_cli.app, ["list", "--json"]).stdout)[0]
    assert data["runs"] == {"format": "Q4_0", "path": str(copy)}
    assert data["variants"][0]["quant"] == "Q4_0"


def test_optimize_remove_runs_the_download_again() -> None:
    original = fixtures.install_original()
    runner.invoke(models_cli.app, ["optimize", "coder", "--format", "q8_0"])
    result = runner.invoke(models_cli.app, ["optimize", "coder", "--remove"])
    assert result.exit_code == 0
    assert result.stdout.strip() == "coder: runs Q4_K_M as downloaded"
    assert read_record("coder") is None
    assert registry.resolve_model("coder", optimized=True).path == original


def test_optimize_auto_reports_each_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    fixtures.install_original()
    rates = {"Q4_K_M": 40, "Q4_0": 80, "IQ4_NL_MIX": 70, "Q8_0": 50}
    monkeypatch.setattr(optimize, "measure", lambda p, fmt, t=None: optimize.Measurement(
        fmt, 1.0, rates[fmt], 5, 8))
    result = runner.invoke(models_cli.app, ["optimize", "coder"])  # no registry choice: auto
    assert result.exit_code == 0, result.output
    assert "kept the Q4_0 copy" in result.stdout
    assert [line.split()[0] for line in result.stderr.splitlines() if "checks right" in line] \
        == ["Q4_K_M", "Q4_0", "IQ4_NL_MIX", "Q8_0"]


def test_optimize_needs_the_download_and_a_known_format() -> None:
    result = runner.invoke(models_cli.app, ["optimize", "coder", "--format", "q4_0"])
    assert isinstance(result.exception, ModelNotInstalledError)
    fixtures.install_original()
    result = runner.invoke(models_cli.app, ["optimize", "coder", "--format", "q3_k"])
    assert isinstance(result.exception, InputError)
    assert read_record("coder") is None


def test_pull_quant_downloads_the_variant_and_engines_run_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(hf_source, "hf_hub_download", fake_hf_download(calls))
    fixtures.install_original()
    result = runner.invoke(models_cli.app, ["pull", "coder", "--quant", "q4_0"])
    assert result.exit_code == 0, result.output
    assert [(c["repo_id"], c["filename"]) for c in calls] == [
        ("someone/coder-GGUF", "coder-q4_0.gguf")]
    record = read_record("coder")
    assert record is not None and (record.format, record.origin) == ("Q4_0", "download")
    resolved = registry.resolve_model("coder", optimized=True)
    assert resolved.path == Path(record.path) and resolved.path.read_bytes() == VARIANT
    assert runner.invoke(models_cli.app, ["list"]).stdout.split("\t")[-1].strip() == \
        "Q4_0 (variant)"


def test_pull_unknown_quant_is_one_clear_error() -> None:
    result = runner.invoke(models_cli.app, ["pull", "coder", "--quant", "Q8_0"])
    assert isinstance(result.exception, InputError)
    assert "no published Q8_0 file (variants: Q4_0)" in str(result.exception)


def test_pull_makes_the_registry_copy_unless_told_not_to(
    monkeypatch: pytest.MonkeyPatch, fake_registry: Registry,
) -> None:
    entry = fake_registry.get("coder")
    chosen = Registry([entry.__class__(**{**entry.__dict__, "optimize": "Q4_0"})])
    monkeypatch.setattr(models_cli, "load_registry", lambda: chosen)
    fixtures.install_original()
    result = runner.invoke(models_cli.app, ["pull", "coder", "--no-optimize"])
    assert result.exit_code == 0 and read_record("coder") is None
    result = runner.invoke(models_cli.app, ["pull", "coder"])
    assert result.exit_code == 0, result.output
    record = read_record("coder")
    assert record is not None and record.format == "Q4_0"
    assert "optimize coder --remove" in result.stderr


def test_rm_removes_the_copy_too() -> None:
    original = fixtures.install_original()
    runner.invoke(models_cli.app, ["optimize", "coder", "--format", "q4_0"])
    result = runner.invoke(models_cli.app, ["rm", "coder", "--yes"])
    assert result.exit_code == 0, result.output
    assert not original.exists() and read_record("coder") is None
    assert not (copies_dir() / "coder-q4_k_m.Q4_0.gguf").exists()


def test_llama_factory_loads_the_copy_unless_no_optimize(monkeypatch: pytest.MonkeyPatch) -> None:
    import ponder.engines.llamacpp as llamacpp

    loaded: list[Path] = []

    class FakeEngine(ScriptedEngine):
        def __init__(self, path: Path, **kwargs: Any) -> None:
            super().__init__()
            loaded.append(Path(path))

    monkeypatch.setattr(llamacpp, "LlamaCppEngine", FakeEngine)
    monkeypatch.setattr(engines, "_CACHE", {})
    original = fixtures.install_original()
    copy = fixtures.install_copy()
    load_engine("llama", EngineOptions(model="coder", optimize=True))
    load_engine("llama", EngineOptions(model="coder"))  # scripts get the download
    assert loaded == [copy, original]
    assert models_dir() in original.parents


def test_no_optimize_flag_reaches_the_engine_options() -> None:
    seen: list[EngineOptions] = []

    def factory(options: EngineOptions) -> Loaded:
        seen.append(options)
        return Loaded(ScriptedEngine(["\\boxed{4}"] * 2), "prompted", "scripted")

    register_engine("capture", factory)
    for flag, expected in (("--no-optimize", False), ("--optimize", True)):
        result = runner.invoke(app, ["ask", "2+2?", "--engine", "capture", "--quiet",
                                     "--strategy", "cot", flag, "--seed", str(int(expected))])
        assert result.exit_code == 0, result.output
        assert seen[-1].optimize is expected
