"""`--gpu-layers auto`: every layer on a GPU build of llama.cpp, none on a CPU-only one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import llama_cpp
import pytest

import ponder.engines.llamacpp
from ponder.engines.gpu import ALL_LAYERS, offload_layers, parse_gpu_layers
from ponder.errors import EngineError
from tests.harness import run


@pytest.mark.parametrize(("gpu_build", "expected"), [(True, ALL_LAYERS), (False, 0)])
def test_auto_follows_the_builds_gpu_backend(
    monkeypatch: pytest.MonkeyPatch, gpu_build: bool, expected: int
) -> None:
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: gpu_build)
    assert offload_layers(None) == expected


def test_a_number_is_kept_and_minus_one_is_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: True)
    assert offload_layers(0) == 0
    assert offload_layers(12) == 12
    assert offload_layers(-1) == ALL_LAYERS


def test_parse() -> None:
    assert parse_gpu_layers("auto") is None and parse_gpu_layers(" AUTO ") is None
    assert parse_gpu_layers("0") == 0 and parse_gpu_layers("-1") == -1
    for bad in ("-2", "all", "1.5", ""):
        with pytest.raises(ValueError, match="not a number of layers"):
            parse_gpu_layers(bad)


@pytest.mark.parametrize(("args", "gpu_build", "expected"), [
    ([], True, ALL_LAYERS),
    ([], False, 0),
    (["--gpu-layers", "auto"], True, ALL_LAYERS),
    (["--gpu-layers", "8"], True, 8),
    (["--gpu-layers", "-1"], False, ALL_LAYERS),
])
def test_the_cli_default_is_auto(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], gpu_build: bool,
    expected: int,
) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(60))

    asked: list[int] = []

    def engine(path: Path, **kwargs: Any) -> None:
        asked.append(kwargs["gpu_layers"])
        raise EngineError("stand-in engine")

    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: gpu_build)
    monkeypatch.setattr(ponder.engines.llamacpp, "LlamaCppEngine", engine)
    ran = run(["ask", "--engine", "llama", "--model", str(model), *args, "q"])
    assert ran.lines == ["ponder: error: stand-in engine"]
    assert asked == [expected]
