"""Engine settings on chains as long as ponder's: KV cache type, flash attention,
n_batch/n_ubatch and threads, measured at a KV depth of 1-2k tokens per chain.

    python benchmarks/settings.py --model ID_OR_PATH [--depth 1024] [--n 8] [--steps 24]
        [--threads T] [--variants base fa=off kv=q8_0 ubatch=128 threads=1]

Each variant runs in its own worker process, one after another. A llama.cpp context set up
as LlamaCppEngine sets up its own (unified KV cache, flash attention, K/V type, n_batch,
n_ubatch, threads; `base` is the engine's defaults) holds N distinct chains of --depth
tokens, each prefilled from its own text (timed: prefill tokens/s, n_batch/n_ubatch matter
here). Then --steps decode steps each decode the next token of every chain in one batch
(greedy): the shared step ponder runs, with N x depth cells in the cache (timed: ms/step,
flash attention and the KV type matter here). Prints both per variant and their ratio to the
first variant; the header records the machine and the load.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BASE = {"fa": "on", "kv": "f16", "batch": 512, "ubatch": 512}


def chain_text(i: int, words: int) -> str:
    """A distinct, reasoning-like text for chain i (about 1.3 tokens per word)."""
    rng = random.Random(i)
    parts: list[str] = [f"Problem {i}: work through the sums step by step."]
    k = 0
    while sum(len(p.split()) for p in parts) < words:
        k += 1
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        parts.append(f"Step {k}: {a} plus {b} gives {a + b}, so we carry it to the next line.")
    return " ".join(parts)


def work(model: Path, args: dict[str, Any]) -> dict[str, Any]:
    import llama_cpp
    import numpy as np

    from ponder.engines.llamacpp import KV_TYPES, LlamaCppEngine

    n, depth, steps, s = args["n"], args["depth"], args["steps"], args["settings"]
    LlamaCppEngine(model, n_ctx=256, n_slots=1).close()  # backend up, logs quiet
    mparams = llama_cpp.llama_model_default_params()
    mdl = llama_cpp.llama_model_load_from_file(str(model).encode(), mparams)
    vocab = llama_cpp.llama_model_get_vocab(mdl)
    n_vocab = int(llama_cpp.llama_vocab_n_tokens(vocab))
    p = llama_cpp.llama_context_default_params()
    p.n_ctx = n * (depth + steps + 16)
    p.n_batch, p.n_ubatch = s["batch"], min(s["batch"], s["ubatch"])
    p.n_seq_max = n
    p.n_threads = p.n_threads_batch = s["threads"]
    p.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if s["fa"] == "on"
                         else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
    p.type_k = p.type_v = KV_TYPES[s["kv"]]
    p.no_perf = True
    p.kv_unified = True
    ctx = llama_cpp.llama_init_from_model(mdl, p)
    chains = []
    for i in range(n):
        text = chain_text(i, depth).encode()
        buf = (llama_cpp.llama_token * (len(text) + 16))()
        got = llama_cpp.llama_tokenize(vocab, text, len(text), buf, len(buf), True, False)
        if got < depth:
            raise SystemExit(f"chain text too short: {got} < {depth} tokens")
        chains.append(list(buf[:depth]))
    batch = llama_cpp.llama_batch_init(max(s["batch"], n), 0, 1)

    def decode(items: list[tuple[int, int, int, bool]]) -> None:
        for j, (tok, pos, seq, logits) in enumerate(items):
            batch.token[j], batch.pos[j], batch.n_seq_id[j] = tok, pos, 1
            batch.seq_id[j][0], batch.logits[j] = seq, int(logits)
        batch.n_tokens = len(items)
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise SystemExit("llama_decode failed")

    t0 = time.perf_counter()
    for seq, toks in enumerate(chains):
        for start in range(0, depth, s["batch"]):
            chunk = toks[start:start + s["batch"]]
            decode([(t, start + k, seq, start + k == depth - 1) for k, t in enumerate(chunk)])
    prefill_s = time.perf_counter() - t0
    nxt = [0] * n
    t1 = time.perf_counter()
    for step in range(steps):
        decode([(nxt[seq], depth + step, seq, True) for seq in range(n)])
        for j in range(n):
            row = llama_cpp.llama_get_logits_ith(ctx, j)
            nxt[j] = int(np.ctypeslib.as_array(row, shape=(n_vocab,)).argmax())
    decode_s = time.perf_counter() - t1
    llama_cpp.llama_batch_free(batch)
    llama_cpp.llama_free(ctx)
    llama_cpp.llama_model_free(mdl)
    return {"prefill_tok_s": n * depth / prefill_s, "ms_per_step": 1000 * decode_s / steps,
            "decode_tok_s": n * steps / decode_s}


def parse_variant(text: str, threads: int) -> dict[str, Any]:
    """'base' or 'fa=off,kv=q8_0,ubatch=128,batch=2048,threads=1' over the defaults."""
    settings: dict[str, Any] = {**BASE, "threads": threads}
    for pair in ([] if text == "base" else text.split(",")):
        key, _, value = pair.partition("=")
        if key not in settings:
            raise SystemExit(f"unknown setting {key!r} in {text!r}")
        settings[key] = int(value) if key in ("batch", "ubatch", "threads") else value
    return settings


def run_worker(model: Path, args: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", "--model", str(model), json.dumps(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"worker failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="registry id or GGUF path")
    ap.add_argument("--depth", type=int, default=1024, help="tokens per chain before timing")
    ap.add_argument("--n", type=int, default=8, help="chains decoded side by side")
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--threads", type=int, default=None, help="default: free cores")
    ap.add_argument("--variants", nargs="+",
                    default=["base", "fa=off", "kv=q8_0", "ubatch=128", "threads=1"])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("payload", nargs="?", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.worker:
        print(json.dumps(work(Path(opts.model), json.loads(opts.payload))))
        return
    import _machine

    from ponder.engines.llamacpp import free_cores
    from ponder.registry import resolve_model

    model = resolve_model(opts.model, optimized=True).path
    threads = opts.threads or free_cores()
    for line in _machine.header_lines():
        print(line)
    print(f"model: {model.name}; {opts.n} chains x {opts.depth} tokens, then {opts.steps} "
          f"shared decode steps; threads {threads}; base = {BASE}")
    print()
    print(f"{'variant':<28} {'prefill tok/s':>13} {'decode ms/step':>14} {'tok/s':>7} | "
          f"{'prefill x':>9} {'decode x':>8}")
    first: dict[str, Any] | None = None
    for text in opts.variants:
        settings = parse_variant(text, threads)
        r = run_worker(model, {"n": opts.n, "depth": opts.depth, "steps": opts.steps,
                               "settings": settings})
        first = first or r
        print(f"{text:<28} {r['prefill_tok_s']:>13.1f} {r['ms_per_step']:>14.1f} "
              f"{r['decode_tok_s']:>7.1f} | {r['prefill_tok_s'] / first['prefill_tok_s']:>8.2f}x "
              f"{r['decode_tok_s'] / first['decode_tok_s']:>7.2f}x", flush=True)
    print()
    print(f"after: {_machine.uptime()}")
    print("x = ratio to the first variant (higher is faster); variants ran one after another, "
          "so a change in the load between them shows up as noise.")


if __name__ == "__main__":
    main()
