"""The in-process llama.cpp engine, in layers:

- :mod:`.capi`: the model, a context, the batch and sampler chains (the C API);
- :mod:`.logprobs`: log-probabilities from logits;
- :mod:`.slots`: KV slots, prompt holders and prefix reuse;
- :mod:`.generation`: one request's sequences, hooks, budget and text;
- :mod:`.scheduler`: the thread that owns the context and runs the shared decode steps;
- :mod:`.engine`: :class:`LlamaCppEngine`, the Engine protocol on top;
- :mod:`.cpu`: how many cores are free (the default thread count).
"""

from ponder.engines.llamacpp.capi import KV_TYPES
from ponder.engines.llamacpp.cpu import busy_cpus, free_cores
from ponder.engines.llamacpp.engine import DEFAULT_FLASH_ATTN, LlamaCppEngine
from ponder.engines.llamacpp.generation import GenerationStats, LlamaCppGeneration

__all__ = ["DEFAULT_FLASH_ATTN", "KV_TYPES", "GenerationStats", "LlamaCppEngine",
           "LlamaCppGeneration", "busy_cpus", "free_cores"]
