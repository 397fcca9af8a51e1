"""`ponder.gguf_tensors`: tensor types and file type read with ggml's GGUF reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ponder.errors import EngineError
from ponder.gguf_tensors import TensorTypes, read_tensor_types


def write_tensors(path: Path, file_type: int | None) -> Path:
    """A GGUF file with two small tensors (F32 and F16) and, if given, a file type."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    if file_type is not None:
        writer.add_file_type(file_type)
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(32, np.float32))
    writer.add_tensor("blk.0.attn_q.weight", np.ones((4, 32), np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_types_and_file_type(tmp_path: Path) -> None:
    found = read_tensor_types(write_tensors(tmp_path / "t.gguf", file_type=1))
    assert found == TensorTypes({"blk.0.attn_norm.weight": 0, "blk.0.attn_q.weight": 1}, 1)


def test_a_file_without_a_file_type(tmp_path: Path) -> None:
    assert read_tensor_types(write_tensors(tmp_path / "t.gguf", file_type=None)).file_type is None


def test_what_is_not_gguf_is_an_engine_error(tmp_path: Path) -> None:
    (tmp_path / "text.gguf").write_text("not a model", encoding="utf-8")
    for path in (tmp_path / "text.gguf", tmp_path / "missing.gguf"):
        with pytest.raises(EngineError, match="could not read the tensors"):
            read_tensor_types(path)
