"""Engine settings measured by benchmarks/parallel.py: KV cache type and n_ubatch."""

from __future__ import annotations

from pathlib import Path

import llama_cpp
import pytest

from ponder.engines.base import Sampling, generate
from ponder.engines.llamacpp import LlamaCppEngine
from ponder.errors import InputError
from tests.models import smollm2_path

pytestmark = pytest.mark.integration
PROMPT = "Count slowly from one to forty, writing every number in words. " * 2


def state_bytes(path: Path, **settings: object) -> int:
    """Bytes of llama.cpp state (mostly the KV cells in use) after one short generation."""
    with LlamaCppEngine(path, n_ctx=512, n_slots=1, n_threads=1, **settings) as engine:
        (out,) = generate(engine, PROMPT, Sampling(temperature=0.0, max_tokens=4))
        assert out.tokens > 0
        return int(llama_cpp.llama_state_get_size(engine.context.raw))


def test_q8_0_kv_cache_holds_the_same_tokens_in_less_memory() -> None:
    path = smollm2_path()
    f16 = state_bytes(path, flash_attn=True)
    q8 = state_bytes(path, flash_attn=True, kv_type="Q8_0")
    assert q8 < 0.7 * f16


def test_n_ubatch_sets_the_physical_batch() -> None:
    with LlamaCppEngine(smollm2_path(), n_ctx=512, n_slots=1, n_threads=1,
                        n_ubatch=64) as engine:
        assert llama_cpp.llama_n_ubatch(engine.context.raw) == 64
        (out,) = generate(engine, PROMPT, Sampling(temperature=0.0, max_tokens=4))
        assert out.tokens > 0


@pytest.mark.parametrize("settings, message", [
    ({"kv_type": "q3"}, "unknown KV cache type"),
    ({"kv_type": "q8_0", "flash_attn": False}, "needs flash attention"),
])
def test_bad_kv_settings_are_input_errors(settings: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        LlamaCppEngine(smollm2_path(), n_ctx=256, n_slots=1, **settings)  # type: ignore[arg-type]
