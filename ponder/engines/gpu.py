"""How many model layers to offload to a GPU (`--gpu-layers`).

``auto`` (the default) offloads every layer when this llama-cpp-python build has a GPU
backend (CUDA, Metal, Vulkan, ...; ``llama_supports_gpu_offload``) and none on a CPU-only
build. A number offloads that many layers; -1 offloads all of them.
"""

from __future__ import annotations

ALL_LAYERS = 0x7FFFFFFF
"""llama.cpp offloads min(this, the model's layer count): every layer (llama-cpp-python's -1)."""


def parse_gpu_layers(text: str) -> int | None:
    """'auto' is None; otherwise a whole number of at least -1."""
    value = text.strip().lower()
    if value == "auto":
        return None
    try:
        number = int(value)
    except ValueError:
        number = -2
    if number < -1:
        raise ValueError(f"{text!r} is not a number of layers, -1 (all) or auto")
    return number


def gpu_offload_supported() -> bool:
    """Whether the installed llama.cpp was built with a GPU backend."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def offload_layers(requested: int | None) -> int:
    """The n_gpu_layers to load a model with: `requested`, or the automatic choice (None)."""
    if requested is None:
        return ALL_LAYERS if gpu_offload_supported() else 0
    return ALL_LAYERS if requested < 0 else requested
