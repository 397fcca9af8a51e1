"""Time per token of llama.cpp's sampler chain: top-p alone against ponder's chain.

    python benchmarks/sampler.py --model qwen2.5-coder-0.5b [--calls 200]

With top-k off (the R1 distills', SmolLM2's and Phi-4's family settings), top-p alone
sorts the whole vocabulary at every token; ponder's `make_sampler` puts a top-k of
`NUCLEUS_CAP` in front. One prompt is evaluated, then `llama_sampler_sample` is called
--calls times on its last logits, best of 3; the table prints milliseconds per token for
top-p 0.95 alone, for ponder's chain with top-k off, and for top-k 20/40 as on other
families, at temperature 0.6.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ponder.engines.base import Sampling  # noqa: E402
from ponder.engines.llamacpp.capi import NUCLEUS_CAP, make_sampler  # noqa: E402
from ponder.registry import resolve_model  # noqa: E402


def top_p_alone(top_p: float, temperature: float) -> Any:
    import llama_cpp

    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_p(top_p, 1))
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_temp(temperature))
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(1))
    return chain


def per_token(sampler: Any, ctx: Any, calls: int) -> float:
    import llama_cpp

    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(calls):
            llama_cpp.llama_sampler_sample(sampler, ctx, -1)
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args()
    from llama_cpp import Llama

    path = resolve_model(args.model, optimized=False).path
    llm = Llama(model_path=str(path), n_ctx=512, verbose=False, n_threads=2)
    llm.eval(llm.tokenize(b"The quick brown fox jumps over the lazy dog and then"))
    ctx = llm._ctx.ctx
    print(f"{path.name}: vocabulary {llm.n_vocab():,} tokens; ms per sampled token, best of 3")
    rows = [("top-p 0.95 alone (top-k off, before)", top_p_alone(0.95, 0.6)),
            (f"ponder, top-k off (top-k {NUCLEUS_CAP} then top-p 0.95)",
             make_sampler(Sampling(temperature=0.6, top_k=0, top_p=0.95, min_p=0.0), 1))]
    for k in (20, 40):
        rows.append((f"ponder, top-k {k}, top-p 0.95",
                     make_sampler(Sampling(temperature=0.6, top_k=k, top_p=0.95, min_p=0.0), 1)))
    times = [(name, per_token(s, ctx, args.calls)) for name, s in rows]
    for name, ms in times:
        print(f"  {name:<48} {ms:7.3f}")
    print(f"sampler: top_p_alone={times[0][1]:.3f}ms ponder={times[1][1]:.3f}ms "
          f"speedup={times[0][1] / times[1][1]:.1f}x")


if __name__ == "__main__":
    main()
