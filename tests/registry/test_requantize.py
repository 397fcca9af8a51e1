"""`ponder.requantize`: formats as plans, tensor-type overrides that keep the source's types,
and (integration) real copies of SmolLM2 made by llama.cpp."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import ponder.gguf_tensors as gguf_tensors
from ponder.catalog import COPY_FORMATS
from ponder.requantize import Plan, _keep_types, parse_format
from tests.models import smollm2_path

F32, Q8_0, Q5_0, Q6_K, IQ4_NL = 0, 8, 6, 14, 20


def test_formats_read_as_plans() -> None:
    assert parse_format("Q4_0") == Plan("Q4_0")
    assert parse_format("Q4_0_PURE") == Plan("Q4_0", pure=True)
    assert parse_format("Q4_0_OUT_IQ4_NL") == Plan("Q4_0", "IQ4_NL")
    assert parse_format("OUT_IQ4_NL") == Plan("", "IQ4_NL")
    assert parse_format("IQ4_NL_MIX") == Plan("", "IQ4_NL", swap={"Q5_0": "IQ4_NL"})
    assert all(parse_format(fmt).base or parse_format(fmt).output for fmt in COPY_FORMATS)


def overrides_for(monkeypatch: pytest.MonkeyPatch, types: dict[str, int],
                  plan: Plan) -> tuple[dict[str, int | None], Any]:
    """What type each tensor gets from `_keep_types`' table (None: no pattern matches it),
    and the params it filled."""
    monkeypatch.setattr(gguf_tensors, "read_tensor_types",
                        lambda path: gguf_tensors.TensorTypes(types, 15))
    params = type("Params", (), {"ftype": 0})()
    table = _keep_types(Path("model.gguf"), plan, params)
    rows = []
    for row in table:
        if row.pattern is None:
            break
        rows.append((re.compile(row.pattern.decode()), row.type))
    got = {name: next((kind for pattern, kind in rows if pattern.search(name)), None)
           for name in types}
    return got, params


def test_a_mix_swaps_one_type_and_keeps_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    types = {"output.weight": Q8_0, "token_embd.weight": Q5_0, "blk.0.attn_q.weight": Q5_0,
             "blk.0.ffn_down.weight": Q6_K, "blk.0.attn_v.weight": Q8_0,
             "blk.0.attn_norm.weight": F32, "blk.10.attn_q.weight": Q5_0}
    got, params = overrides_for(monkeypatch, types, parse_format("IQ4_NL_MIX"))
    assert got == {"output.weight": None,  # left to output_tensor_type
                   "token_embd.weight": IQ4_NL, "blk.0.attn_q.weight": IQ4_NL,
                   "blk.0.ffn_down.weight": Q6_K, "blk.0.attn_v.weight": Q8_0,
                   "blk.0.attn_norm.weight": None,  # 1-d: llama.cpp never quantizes it
                   "blk.10.attn_q.weight": IQ4_NL}
    assert params.ftype == 15  # the source's file type


def test_a_tied_embedding_is_the_output_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    types = {"token_embd.weight": Q8_0, "blk.0.attn_q.weight": Q5_0}
    got, _ = overrides_for(monkeypatch, types, parse_format("OUT_IQ4_NL"))
    assert got == {"token_embd.weight": None, "blk.0.attn_q.weight": Q5_0}


@pytest.mark.integration
@pytest.mark.parametrize("fmt", ["OUT_IQ4_NL", "IQ4_NL_MIX"])
def test_a_kept_copy_changes_only_the_output_layer(tmp_path: Path, fmt: str) -> None:
    """SmolLM2 (Q4_1, tied Q8_0 embedding, no Q5_0 tensor): both formats put the tied
    embedding in IQ4_NL and leave every other tensor byte for byte as it was."""
    import gguf

    from ponder.requantize import quantize

    copy = tmp_path / "copy.gguf"
    quantize(smollm2_path(), copy, fmt, threads=1)
    before = {t.name: t for t in gguf.GGUFReader(smollm2_path()).tensors}
    after = {t.name: t for t in gguf.GGUFReader(copy).tensors}
    assert after.keys() == before.keys()
    changed = [name for name, t in after.items()
               if t.tensor_type != before[name].tensor_type
               or t.data.tobytes() != before[name].data.tobytes()]
    assert changed == ["token_embd.weight"]
    assert after["token_embd.weight"].tensor_type.name == "IQ4_NL"
