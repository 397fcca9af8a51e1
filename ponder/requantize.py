"""Requantizing a GGUF file into a copy format with llama.cpp's own quantizer.

A format is llama.cpp's mix for a file type (``Q4_0``), optionally with every tensor in that
type (``_PURE``) or the output layer in another type (``Q4_0_OUT_IQ4_NL``); or it starts from
the source's own tensor types and changes only some of them (``OUT_IQ4_NL``: the output layer;
``IQ4_NL_MIX``: also every Q5_0 tensor). For the latter, llama.cpp is told each tensor's type
(tensor-type overrides), so the unchanged tensors are the source's bytes.
"""

from __future__ import annotations

import ctypes
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ponder.errors import EngineError

_LOG_CALLBACK: Any = None


@dataclass(frozen=True)
class Plan:
    """How to make one format. ``base`` '' keeps the source's tensor types, except the output
    layer (``output``) and the types named in ``swap`` (source type -> new type)."""

    base: str
    output: str = ""
    pure: bool = False
    swap: dict[str, str] = field(default_factory=dict)


MIXES: dict[str, Plan] = {
    "IQ4_NL_MIX": Plan("", "IQ4_NL", swap={"Q5_0": "IQ4_NL"}),
}
"""Formats that change some of the source's tensor types. ``IQ4_NL_MIX`` targets Q4_K_M files
of models whose width is no multiple of 256 (Qwen2.5-0.5B: 896), where llama.cpp fell back from
Q4_K to Q5_0 for most tensors: those and the output layer go to IQ4_NL (4.5 bits, non-linear
levels, repacked for fast CPU kernels at load); the Q4_K/Q6_K/Q8_0 tensors stay as they are."""


def parse_format(fmt: str) -> Plan:
    """'Q4_0_OUT_IQ4_NL' -> Plan('Q4_0', 'IQ4_NL'); 'OUT_IQ4_NL' -> Plan('', 'IQ4_NL');
    'Q4_0_PURE' -> Plan('Q4_0', pure=True)."""
    if fmt in MIXES:
        return MIXES[fmt]
    pure = fmt.endswith("_PURE")
    body = fmt.removesuffix("_PURE")
    if body.startswith("OUT_"):
        return Plan("", body.removeprefix("OUT_"), pure)
    base, _, output = body.partition("_OUT_")
    return Plan(base, output, pure)


def quiet_llama() -> Any:
    """llama_cpp, with llama.cpp's log silenced (quantizing prints a line per tensor)."""
    global _LOG_CALLBACK
    import llama_cpp

    if _LOG_CALLBACK is None:

        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
        def _quiet(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            return None

        _LOG_CALLBACK = _quiet
    llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))
    return llama_cpp


def quantize(src: Path, dst: Path, fmt: str, threads: int | None = None) -> None:
    """Write ``src`` requantized to ``fmt`` at ``dst`` (atomically) with llama.cpp."""
    llama_cpp = quiet_llama()
    params = llama_cpp.llama_model_quantize_default_params()
    plan = parse_format(fmt)
    params.pure = plan.pure
    if plan.base:
        params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{plan.base}")
    else:
        overrides = _keep_types(src, plan, params)  # alive until llama.cpp has read it
        params.tt_overrides = ctypes.cast(
            overrides, ctypes.POINTER(llama_cpp.llama_model_tensor_override))
    if plan.output:
        params.output_tensor_type = getattr(llama_cpp, f"GGML_TYPE_{plan.output}")
    params.allow_requantize = True
    params.nthread = threads or 0
    partial = dst.with_name(dst.name + ".partial")
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        rc = llama_cpp.llama_model_quantize(
            str(src).encode(), str(partial).encode(), ctypes.byref(params)
        )
        if rc != 0 or not partial.is_file():
            raise EngineError(f"llama.cpp could not requantize {src.name} to {fmt} (code {rc})")
        os.replace(partial, dst)
    finally:
        partial.unlink(missing_ok=True)


_OUTPUT = "output.weight"
_TIED = "token_embd.weight"
"""The output layer of a model that ties it to its token embedding."""
_FLOAT_TYPES = (0, 1, 30)
"""F32, F16, BF16: tensors llama.cpp keeps as they are (norms, biases)."""


def _keep_types(src: Path, plan: Plan, params: Any) -> Any:
    """Tensor-type overrides (one pattern per type) that give every quantized tensor of
    ``src`` its own type, or the one ``plan.swap`` names for it; the output layer is left to
    ``output_tensor_type`` and the file type is ``src``'s own."""
    import llama_cpp

    from ponder.gguf_tensors import read_tensor_types

    found = read_tensor_types(src)
    if found.file_type is not None:
        params.ftype = found.file_type
    swap = {getattr(llama_cpp, f"GGML_TYPE_{a}"): getattr(llama_cpp, f"GGML_TYPE_{b}")
            for a, b in plan.swap.items()}
    output = (_OUTPUT if _OUTPUT in found.types else _TIED) if plan.output else ""
    by_type: dict[int, list[str]] = {}
    for name, kind in found.types.items():
        if kind not in _FLOAT_TYPES and name != output:
            by_type.setdefault(swap.get(kind, kind), []).append(re.escape(name))
    patterns = [(f"^(?:{'|'.join(names)})$".encode(), kind) for kind, names in by_type.items()]
    table = (llama_cpp.llama_model_tensor_override * (len(patterns) + 1))()
    for row, (pattern, kind) in zip(table, patterns, strict=False):
        row.pattern, row.type = pattern, kind
    table[len(patterns)].pattern = None
    return table
