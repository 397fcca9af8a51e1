"""The llama.cpp C API as the engine uses it: the model and its vocabulary, a context with
its KV memory and one reusable batch, and sampler chains. Nothing here knows generations.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt

from ponder.engines.base import Sampling
from ponder.errors import EngineError, InputError, ModelFileError

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
# KV cache element types (K and V alike); q8_0 halves the cache and needs flash attention.
KV_TYPES = {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0}

_LOG_CALLBACK: Any = None  # keeps the ctypes callback alive while llama.cpp holds it
_BACKEND_READY = False


def configure_logging(verbose: bool) -> None:
    """Silence llama.cpp's stderr logging unless `verbose`."""
    global _LOG_CALLBACK
    if verbose:  # llama-cpp-python's own callback, printing everything
        from llama_cpp import _logger

        _logger.set_verbose(True)
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
        return

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def _quiet(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        return None

    _LOG_CALLBACK = _quiet
    llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))


def backend_init() -> None:
    global _BACKEND_READY
    if not _BACKEND_READY:
        llama_cpp.llama_backend_init()
        _BACKEND_READY = True


def check_kv_type(name: str, flash_attn: bool) -> str:
    """Validate a KV cache type; llama.cpp needs flash attention for a quantized V cache."""
    key = name.lower()
    if key not in KV_TYPES:
        raise InputError(f"unknown KV cache type {name!r}", f"choose from {', '.join(KV_TYPES)}")
    if key != "f16" and not flash_attn:
        raise InputError(f"a {key} KV cache needs flash attention", "turn flash attention on")
    return key


def check_gguf(path: Path) -> None:
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as err:
        raise ModelFileError(f"cannot read model file {path}: {err.strerror}") from err
    if magic != b"GGUF":
        raise ModelFileError(f"{path.name} is not a GGUF model file", "re-download it")


def _read_metadata(model: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    size = 4096
    buf = ctypes.create_string_buffer(size)
    for i in range(llama_cpp.llama_model_meta_count(model)):
        key = _meta_string(llama_cpp.llama_model_meta_key_by_index, model, i, buf)
        out[key] = _meta_string(llama_cpp.llama_model_meta_val_str_by_index, model, i, buf)
    return out


def _meta_string(fn: Any, model: Any, i: int, buf: Any) -> str:
    n = fn(model, i, buf, len(buf))
    if n >= len(buf):
        buf = ctypes.create_string_buffer(n + 1)
        n = fn(model, i, buf, len(buf))
    return bytes(buf.raw[: max(n, 0)]).decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- model


class Model:
    """A loaded GGUF model and its vocabulary: tokens, cached pieces, end-of-generation."""

    def __init__(self, path: Path, gpu_layers: int) -> None:
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = gpu_layers
        raw = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        if not raw:
            raise ModelFileError(
                f"llama.cpp could not load {path.name}",
                "the file is truncated, corrupted or of an unsupported architecture",
            )
        self.raw: Any = raw
        self.vocab = llama_cpp.llama_model_get_vocab(raw)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self._pieces: dict[int, bytes] = {}
        self._piece_texts: dict[int, str] = {}
        self._eog: dict[int, bool] = {}
        self._piece_buf = ctypes.create_string_buffer(256)
        try:
            self.metadata = _read_metadata(raw)
            self.n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(raw))
        except BaseException:
            self.free()
            raise

    @property
    def bos(self) -> int:
        return int(llama_cpp.llama_vocab_bos(self.vocab))

    @property
    def eos(self) -> int:
        return int(llama_cpp.llama_vocab_eos(self.vocab))

    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, True)
        if n < 0:
            cap = -n
            buf = (llama_cpp.llama_token * cap)()
            n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, True)
        return list(buf[:n])

    def tokenize_prompt(self, prompt: str) -> list[int]:
        """Tokenize a rendered prompt, adding BOS only if the template did not."""
        tokens = self.tokenize(prompt, add_special=True)
        bos = self.bos
        if len(tokens) >= 2 and tokens[0] == bos and tokens[1] == bos:
            tokens = tokens[1:]
        return tokens

    def piece(self, tok: int) -> bytes:
        piece = self._pieces.get(tok)
        if piece is None:
            buf = self._piece_buf
            n = llama_cpp.llama_token_to_piece(self.vocab, tok, buf, len(buf), 0, True)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(self.vocab, tok, buf, len(buf), 0, True)
            piece = bytes(buf.raw[:n])
            self._pieces[tok] = piece
        return piece

    def special_text(self, tok: int) -> str:
        return self.piece(tok).decode("utf-8", errors="replace") if tok >= 0 else ""

    def piece_text(self, tok: int) -> str:
        text = self._piece_texts.get(tok)
        if text is None:
            text = self.piece(tok).decode("utf-8", errors="replace")
            self._piece_texts[tok] = text
        return text

    def top_pieces(self, ids: IntArray, lps: FloatArray) -> tuple[tuple[str, float], ...]:
        return tuple(
            (self.piece_text(t), lp) for t, lp in zip(ids.tolist(), lps.tolist(), strict=True)
        )

    def is_eog(self, tok: int) -> bool:
        eog = self._eog.get(tok)
        if eog is None:
            eog = bool(llama_cpp.llama_vocab_is_eog(self.vocab, tok))
            self._eog[tok] = eog
        return eog

    def free(self) -> None:
        self._pieces.clear()
        self._piece_texts.clear()
        if self.raw is not None:
            llama_cpp.llama_model_free(self.raw)
            self.raw = None


# --------------------------------------------------------------------------- batch


class Batch:
    """A reusable llama_batch with numpy views on its arrays (one seq id per token)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.raw = llama_cpp.llama_batch_init(capacity, 0, 1)
        self.token = np.ctypeslib.as_array(self.raw.token, shape=(capacity,))
        self.pos = np.ctypeslib.as_array(self.raw.pos, shape=(capacity,))
        self.n_seq_id = np.ctypeslib.as_array(self.raw.n_seq_id, shape=(capacity,))
        self.logits = np.ctypeslib.as_array(self.raw.logits, shape=(capacity,))
        self.n_seq_id[:] = 1
        self._seq_ptr = self.raw.seq_id
        self._seq_of = np.full(capacity, -1, dtype=np.int64)
        self._freed = False

    def put(self, at: int, tokens: Sequence[int], pos0: int, seq: int, last_logits: bool) -> None:
        end = at + len(tokens)
        self.token[at:end] = tokens
        self.pos[at:end] = np.arange(pos0, pos0 + len(tokens))
        self.logits[at:end] = 0
        if last_logits:
            self.logits[end - 1] = 1
        for i in np.flatnonzero(self._seq_of[at:end] != seq):
            self._seq_ptr[at + int(i)][0] = seq
        self._seq_of[at:end] = seq

    def free(self) -> None:
        if not self._freed:
            self._freed = True
            llama_cpp.llama_batch_free(self.raw)


# --------------------------------------------------------------------------- context


class Context:
    """A llama.cpp context: the KV memory of `n_seq_max` sequences (elements of `kv_type`,
    a key of KV_TYPES), one batch of `n_batch` tokens, and a scratch buffer for `rows`
    rows of logits. Its KV cache is unified, so copying a sequence shares the cells
    instead of duplicating them."""

    def __init__(self, model: Model, *, kv_size: int, n_batch: int, n_ubatch: int | None,
                 kv_type: str, n_seq_max: int, n_threads: int, n_threads_batch: int,
                 flash_attn: bool, rows: int) -> None:
        p = llama_cpp.llama_context_default_params()
        p.n_ctx = kv_size
        p.n_batch = n_batch
        p.n_ubatch = min(n_batch, n_ubatch or 512)
        p.type_k = p.type_v = KV_TYPES[kv_type]
        p.n_seq_max = n_seq_max
        p.n_threads = n_threads
        p.n_threads_batch = n_threads_batch
        p.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if flash_attn
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        p.no_perf = True
        if hasattr(p, "kv_unified"):
            p.kv_unified = True
        if hasattr(p, "swa_full"):
            p.swa_full = True
        raw = llama_cpp.llama_init_from_model(model.raw, p)
        if not raw:
            raise EngineError(
                f"llama.cpp could not create a context of {kv_size} tokens",
                "lower --ctx or --slots",
            )
        self.raw: Any = raw
        self.n_vocab = model.n_vocab
        self.memory = llama_cpp.llama_get_memory(raw)
        self.batch = Batch(n_batch)
        self.scratch: FloatArray = np.empty((rows, model.n_vocab), np.float32)

    def decode(self, n_tokens: int) -> None:
        """Decode the first `n_tokens` of the batch."""
        self.batch.raw.n_tokens = n_tokens
        ret = llama_cpp.llama_decode(self.raw, self.batch.raw)
        if ret == 1:
            raise EngineError(
                "llama.cpp's KV cache is full", "lower the number of parallel sequences"
            )
        if ret != 0:
            raise EngineError(f"llama_decode failed with status {ret}")

    def logits(self, n_rows: int) -> FloatArray:
        """The logits of the last decode's `n_rows` outputs (a view, valid until the next)."""
        ptr = llama_cpp.llama_get_logits(self.raw)
        arr: FloatArray = np.ctypeslib.as_array(ptr, shape=(n_rows, self.n_vocab))
        return arr

    def copy_seq(self, src: int, dst: int, end: int = -1) -> None:
        """Give sequence `dst` the KV cells of `src` at positions below `end` (-1: all)."""
        llama_cpp.llama_memory_seq_cp(self.memory, src, dst, -1, end)

    def remove_seq(self, seq: int, start: int = -1) -> None:
        """Drop the KV cells of `seq` from position `start` on (-1: all of them)."""
        llama_cpp.llama_memory_seq_rm(self.memory, seq, start, -1)

    def sample(self, sampler: Any, output: int) -> int:
        """Sample with `sampler` from the logits of batch output `output`."""
        return int(llama_cpp.llama_sampler_sample(sampler, self.raw, output))

    def free(self) -> None:
        self.batch.free()
        if self.raw is not None:
            llama_cpp.llama_free(self.raw)
            self.raw = None


# --------------------------------------------------------------------------- samplers


NUCLEUS_CAP = 4096
"""The top-k put before top-p when top-k is off. Top-p alone makes llama.cpp sort the whole
vocabulary at every token: 8.5 ms per token with Qwen's 152k-token vocabulary on this
2-core CPU, against 0.35 ms behind a top-k of 4096 (`benchmarks/sampler.py`). A nucleus
wider than 4096 tokens needs an almost flat distribution, which top-p would not cut much."""


def make_sampler(sampling: Sampling, seed: int) -> Any:
    """A sampler chain for `sampling` (greedy at temperature 0), seeded `seed`."""
    params = llama_cpp.llama_sampler_chain_default_params()
    params.no_perf = True
    chain = llama_cpp.llama_sampler_chain_init(params)
    add = llama_cpp.llama_sampler_chain_add
    if sampling.temperature <= 0:
        add(chain, llama_cpp.llama_sampler_init_greedy())
        return chain
    top_k = sampling.top_k
    if top_k <= 0 and 0.0 < sampling.top_p < 1.0:
        top_k = NUCLEUS_CAP
    if top_k > 0:
        add(chain, llama_cpp.llama_sampler_init_top_k(top_k))
    if 0.0 < sampling.top_p < 1.0:
        add(chain, llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1))
    if sampling.min_p > 0.0:
        add(chain, llama_cpp.llama_sampler_init_min_p(sampling.min_p, 1))
    add(chain, llama_cpp.llama_sampler_init_temp(sampling.temperature))
    add(chain, llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))
    return chain


def free_sampler(sampler: Any) -> None:
    llama_cpp.llama_sampler_free(sampler)
