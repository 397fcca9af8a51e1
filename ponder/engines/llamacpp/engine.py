"""In-process llama.cpp engine with true parallel (batched) decoding.

One llama.cpp context holds ``n_slots`` sequence slots plus prompt holders (see
:mod:`.slots`). A request evaluates its prompt once into its holder, reusing a prefix any
holder keeps, then every sequence that takes a slot copies the holder's KV. Each step
decodes the pending token of every live sequence in one ``llama_decode`` batch and samples
each sequence with its own sampler chain (seeded ``seed + index``). A sequence that
finishes frees its slot at once, and the next waiting sequence (``n > n_slots``, a fork, or
another request's) starts in the following step.

Several requests (generations started from several threads) share the slots: the
scheduler (:mod:`.scheduler`), one thread owning the context, serves every generation whose
consumer is waiting for its next event in the same step.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from ponder.engines.base import Sampling
from ponder.engines.llamacpp.capi import (
    Context,
    Model,
    backend_init,
    check_gguf,
    check_kv_type,
    configure_logging,
)
from ponder.engines.llamacpp.cpu import free_cores
from ponder.engines.llamacpp.generation import GenerationStats, LlamaCppGeneration
from ponder.engines.llamacpp.scheduler import Scheduler
from ponder.engines.llamacpp.slots import KVSlots
from ponder.errors import ContextOverflowError, EngineError, InputError
from ponder.events import Message

DEFAULT_CTX = 4096
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Flash attention on CPU: measured with benchmarks/parallel.py (see
# benchmarks/results/parallel-qwen0.5b.txt); batched decode is faster with it on.
DEFAULT_FLASH_ATTN = True


class LlamaCppEngine:
    """A GGUF model loaded in-process, decoding up to `n_slots` sequences per batch.

    `n_ctx` is the context of one request (prompt plus the longest sequence); the KV cache
    holds `n_ctx * (n_slots + 1)` cells (`kv_size` overrides it) shared by all sequences:
    one request's worth per slot, plus room for a prompt kept for prefix reuse.

    Thread-safe: generations started from several threads share the slots, and each step
    decodes the sequences of every generation whose consumer is waiting in one batch.
    Starting a generation closes the ones still open in the calling thread.
    """

    thread_safe = True

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int | None = None,
        n_slots: int = 8,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        gpu_layers: int = 0,
        flash_attn: bool | None = None,
        kv_size: int | None = None,
        n_batch: int = 512,
        n_ubatch: int | None = None,
        kv_type: str = "f16",
        verbose: bool = False,
    ) -> None:
        if n_slots < 1:
            raise InputError(f"n_slots must be at least 1, got {n_slots}")
        self.path = Path(model_path)
        check_gguf(self.path)
        configure_logging(verbose)
        backend_init()
        self.n_slots = n_slots
        self.n_threads = n_threads or free_cores()
        self.n_threads_batch = n_threads_batch or self.n_threads
        self.flash_attn = DEFAULT_FLASH_ATTN if flash_attn is None else flash_attn
        self.kv_type = check_kv_type(kv_type, self.flash_attn)
        self.last_stats: GenerationStats | None = None
        self._chat_formatter: Jinja2ChatFormatter | None = None
        self.context: Context | None = None
        self.scheduler: Scheduler | None = None
        self.model = Model(self.path, gpu_layers)
        try:
            self.metadata = self.model.metadata
            self.n_vocab = self.model.n_vocab
            train = self.model.n_ctx_train
            self._n_ctx = n_ctx or (min(train, DEFAULT_CTX) if train > 0 else DEFAULT_CTX)
            self.n_batch = max(n_batch, n_slots)
            self.kv_size = kv_size or self._n_ctx * (n_slots + 1)
            self.context = Context(
                self.model, kv_size=self.kv_size, n_batch=self.n_batch, n_ubatch=n_ubatch,
                kv_type=self.kv_type, n_seq_max=KVSlots.sequences(n_slots),
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads_batch, flash_attn=self.flash_attn,
                rows=n_slots,
            )
            self.slots = KVSlots(self.context, n_slots)
            self.scheduler = Scheduler(self.context, self.slots, self.n_batch)
        except BaseException:
            self.close()
            raise

    # ---- Engine protocol

    @property
    def model_name(self) -> str:
        return self.metadata.get("general.name") or self.path.stem

    @property
    def context_length(self) -> int:
        return self._n_ctx

    @property
    def capacity(self) -> int:
        return self.n_slots

    def chat_prompt(self, messages: Sequence[Message]) -> str:
        chat: list[Any] = [dict(m) for m in messages]
        try:
            prompt: str = self._formatter()(messages=chat).prompt
        except Exception as err:  # jinja2 errors, raise_exception() in the template
            raise EngineError(f"the model's chat template failed: {err}") from err
        return prompt

    def _formatter(self) -> Jinja2ChatFormatter:
        """The GGUF's own chat template (ChatML when it has none), built once."""
        if self._chat_formatter is None:
            template = self.metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE
            self._chat_formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=self.model.special_text(self.model.eos),
                bos_token=self.model.special_text(self.model.bos),
                add_generation_prompt=True,
            )
        return self._chat_formatter

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenize(text, add_special=False))

    def start(
        self, prompt: str, sampling: Sampling, n: int = 1, budget: int | None = None
    ) -> LlamaCppGeneration:
        scheduler, ctx = self._open()
        tokens = self._check_request(prompt, sampling, n, budget)

        def make(holder: int) -> LlamaCppGeneration:
            return LlamaCppGeneration(scheduler, self.model, ctx, self._n_ctx, tokens,
                                      sampling, n, budget, holder)

        gen = scheduler.open(tokens, make)
        self.last_stats = gen.stats
        return gen

    def reset_cache(self) -> None:
        """Forget the kept prompt KV (the next request evaluates its whole prompt)."""
        scheduler, _ = self._open()
        scheduler.reset_cache()

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown()
            self.scheduler = None
        if self.context is not None:
            self.context.free()
            self.context = None
        self.model.free()

    def __enter__(self) -> LlamaCppEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- requests

    def _open(self) -> tuple[Scheduler, Context]:
        if self.scheduler is None or self.context is None:
            raise EngineError("the llama.cpp engine is closed")
        return self.scheduler, self.context

    def _check_request(
        self, prompt: str, sampling: Sampling, n: int, budget: int | None
    ) -> list[int]:
        if n < 1:
            raise InputError(f"n must be at least 1, got {n}")
        if budget is not None and budget < 0:
            raise InputError(f"budget must not be negative, got {budget}")
        if sampling.top_logprobs < 0:
            raise InputError(f"top_logprobs must not be negative, got {sampling.top_logprobs}")
        tokens = self.model.tokenize_prompt(prompt)
        if not tokens:
            raise InputError("the prompt is empty")
        ctx = self._n_ctx
        if len(tokens) >= ctx:
            raise ContextOverflowError(
                f"prompt is {len(tokens)} tokens; the context holds {ctx}",
                "shorten the input or raise --ctx",
            )
        if len(tokens) + sampling.max_tokens > ctx:
            raise ContextOverflowError(
                f"prompt ({len(tokens)} tokens) + max_tokens ({sampling.max_tokens}) "
                f"exceeds the context of {ctx} tokens",
                "lower max_tokens or raise --ctx",
            )
        return tokens
