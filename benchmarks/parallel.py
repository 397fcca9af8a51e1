"""Parallel decoding benchmark: N sequential llama-cpp-python completions vs one batched
LlamaCppEngine generation of N sequences.

    python benchmarks/parallel.py --model ID_OR_PATH --n 1 2 4 8 16 [--tokens 128]

Every measurement runs in its own worker process (so each peak RSS is its own), with the
same prompt, sampling settings, seeds (seed + i) and thread count. The flash-attention
setting is chosen first by measuring batched decoding with it on and off. Ends with one
line ``n=8 speedup=X.XX prompt_evals=P`` (for N=8).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

QUESTION = (
    "Write a long, detailed story about a lighthouse keeper who finds a mysterious "
    "message in a bottle. Describe the setting, the characters and what happens next."
)
SAMPLING: dict[str, Any] = {
    "temperature": 0.7,
    "top_p": 0.95,
    "top_k": 40,
    "min_p": 0.05,
    "seed": 1,
}


def resolve_model(spec: str) -> Path:
    """A registry id or a path: use ponder.registry when it exists, else a path."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    try:
        from ponder.registry import resolve_model as registry_resolve
    except ImportError:
        return path
    return Path(registry_resolve(spec).path)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- workers


def _engine(model: Path, args: dict[str, Any], n_slots: int, flash_attn: bool) -> Any:
    from ponder.engines.llamacpp import LlamaCppEngine

    return LlamaCppEngine(
        model,
        n_ctx=args["n_ctx"],
        n_slots=n_slots,
        n_threads=args["threads"],
        flash_attn=flash_attn,
    )


def work_engine(model: Path, args: dict[str, Any]) -> dict[str, Any]:
    """One batched generation of n sequences through LlamaCppEngine."""
    from ponder.engines.base import Sampling, generate

    n = args["n"]
    engine = _engine(model, args, max(n, 1), args["flash_attn"])
    prompt = args["prompt"]
    sampling = Sampling(max_tokens=args["tokens"], **SAMPLING)
    generate(engine, prompt, sampling.with_(max_tokens=4), n=n)  # warm-up
    engine.reset_cache()  # the timed run evaluates its prompt itself
    t0 = time.perf_counter()
    out = generate(engine, prompt, sampling, n=n)
    elapsed = time.perf_counter() - t0
    st = engine.last_stats
    engine.close()
    return {
        "tokens": sum(c.tokens for c in out),
        "seconds": elapsed,
        "prompt_tokens": st.prompt_tokens,
        "prompt_evaluated": st.prompt_evaluated + st.seq_start_tokens,
        "prompt_evals": st.prompt_evals,
        "prefill_s": st.prefill_s,
        "steps": st.steps,
        "decode_s": st.decode_s,
        "sample_s": st.sample_s,
        "step_s": st.step_s,
        "rss_mib": peak_rss_mib(),
        "texts": [c.text for c in out],
    }


def work_sequential(model: Path, args: dict[str, Any]) -> dict[str, Any]:
    """n sequential Llama.create_completion calls, seeded seed + i."""
    import llama_cpp

    prompt = args["prompt"]
    llm = llama_cpp.Llama(
        str(model),
        n_ctx=args["n_ctx"],
        n_threads=args["threads"],
        n_threads_batch=args["threads"],
        flash_attn=args["flash_attn"],
        verbose=False,
    )
    evaluated: list[int] = []
    first_eval = [True]
    real_eval = llm.eval

    def counting_eval(tokens: Any) -> None:
        if first_eval[0]:
            evaluated.append(len(tokens))
            first_eval[0] = False
        real_eval(tokens)

    llm.eval = counting_eval  # type: ignore[method-assign]
    settings = {k: v for k, v in SAMPLING.items() if k != "seed"}
    llm.create_completion(prompt, max_tokens=4, seed=0, repeat_penalty=1.0, **settings)
    llm.reset()  # type: ignore[no-untyped-call]  # the timed run evaluates its prompt itself
    evaluated.clear()
    tokens = 0
    texts = []
    t0 = time.perf_counter()
    for i in range(args["n"]):
        first_eval[0] = True
        res: Any = llm.create_completion(
            prompt,
            max_tokens=args["tokens"],
            seed=SAMPLING["seed"] + i,
            repeat_penalty=1.0,
            **settings,
        )
        tokens += res["usage"]["completion_tokens"]
        texts.append(res["choices"][0]["text"])
    elapsed = time.perf_counter() - t0
    return {
        "tokens": tokens,
        "seconds": elapsed,
        "prompt_evaluated": sum(evaluated),
        "prompt_evals": sum(1 for e in evaluated if e > 1),
        "rss_mib": peak_rss_mib(),
        "texts": texts,
    }


def work_calibrate(model: Path, args: dict[str, Any]) -> dict[str, Any]:
    """Batched decode speed (n sequences) with flash attention on and off."""
    from ponder.engines.base import Sampling, generate

    result: dict[str, Any] = {}
    for fa in (True, False):
        engine = _engine(model, args, args["n"], fa)
        prompt = args["prompt"]
        sampling = Sampling(max_tokens=args["tokens"], **SAMPLING)
        generate(engine, prompt, sampling.with_(max_tokens=4), n=args["n"])
        t0 = time.perf_counter()
        out = generate(engine, prompt, sampling, n=args["n"])
        elapsed = time.perf_counter() - t0
        st = engine.last_stats
        engine.close()
        result["on" if fa else "off"] = {
            "tok_s": sum(c.tokens for c in out) / elapsed,
            "decode_ms_per_step": 1000 * st.decode_s / max(st.steps, 1),
        }
    return result


WORKERS = {"engine": work_engine, "sequential": work_sequential, "calibrate": work_calibrate}


def run_worker(kind: str, model: Path, args: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", kind, "--model", str(model), json.dumps(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{kind} worker failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="registry id or GGUF path")
    ap.add_argument("--n", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None, help="default: free cores")
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs per side and N, interleaved; best is kept"
    )
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("payload", nargs="?", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    model = resolve_model(opts.model)
    if opts.worker:
        print(json.dumps(WORKERS[opts.worker](model, json.loads(opts.payload))))
        return
    run(model, opts.n, opts.tokens, opts.threads, max(1, opts.repeat))


def run(model: Path, ns: list[int], tokens: int, threads: int | None, repeat: int) -> None:
    import llama_cpp

    from ponder.engines.llamacpp import LlamaCppEngine
    from ponder.engines.llamacpp.cpu import busy_cpus, free_cores

    with LlamaCppEngine(model, n_ctx=256, n_slots=1) as probe:
        prompt = probe.chat_prompt([{"role": "user", "content": QUESTION}])
        prompt_tokens = probe.count_tokens(prompt)
    free = free_cores()
    threads = threads or free
    n_ctx = 512 + tokens
    print(f"model: {model.name} ({model.stat().st_size / 2**20:.0f} MiB)")
    print(f"llama-cpp-python {llama_cpp.__version__}; {tokens} tokens per sequence")
    print(f"threads: {threads} (free cores measured now: {free}; n_threads_batch = n_threads)")
    print(f"prompt: {prompt_tokens} tokens (chat template of the GGUF)")
    base = {"n_ctx": n_ctx, "threads": threads, "tokens": tokens, "prompt": prompt}

    cal = run_worker("calibrate", model, {**base, "n": 8, "tokens": 48, "flash_attn": True})
    flash_attn = cal["on"]["tok_s"] >= cal["off"]["tok_s"]
    print(
        "flash attention (measured, n=8 x 48 tokens): "
        f"on {cal['on']['tok_s']:.1f} tok/s ({cal['on']['decode_ms_per_step']:.1f} ms/step), "
        f"off {cal['off']['tok_s']:.1f} tok/s ({cal['off']['decode_ms_per_step']:.1f} ms/step)"
        f" -> {'on' if flash_attn else 'off'}"
    )
    print("context: kv_unified=1, n_batch=512, n_ubatch=512, n_slots=N, KV f16")
    print()
    header = (
        f"{'N':>3} | {'seq tok':>7} {'seq tok/s':>9} {'seq prompt':>10} {'seq RSS':>8} | "
        f"{'par tok':>7} {'par tok/s':>9} {'par prompt':>10} {'par RSS':>8} | "
        f"{'speedup':>7} | {'py overhead':>11}"
    )
    print(header)
    print("-" * len(header))
    speedups: dict[int, tuple[float, int]] = {}
    for n in ns:
        args = {**base, "n": n, "flash_attn": flash_attn}
        seq: dict[str, Any] = {}
        par: dict[str, Any] = {}
        for _ in range(repeat):
            others.append(busy_cpus())
            seq = _best(seq, run_worker("sequential", model, args))
            others.append(busy_cpus())
            par = _best(par, run_worker("engine", model, args))
        seq_rate = seq["tokens"] / seq["seconds"]
        par_rate = par["tokens"] / par["seconds"]
        ratio = par_rate / seq_rate
        decode_loop = par["step_s"]
        overhead = (decode_loop - par["decode_s"]) / max(par["decode_s"], 1e-9)
        speedups[n] = (ratio, par["prompt_evals"])
        print(
            f"{n:>3} | {seq['tokens']:>7} {seq_rate:>9.1f} {seq['prompt_evaluated']:>10} "
            f"{seq['rss_mib']:>6.0f}Mi | {par['tokens']:>7} {par_rate:>9.1f} "
            f"{par['prompt_evaluated']:>10} {par['rss_mib']:>6.0f}Mi | {ratio:>6.2f}x | "
            f"{100 * overhead:>10.1f}%"
        )
        details.append((n, seq, par))
    print()
    for n, seq, par in details:
        steps = max(par["steps"], 1)
        print(
            f"N={n}: engine prompt {par['prompt_tokens']} tokens, prefill "
            f"{1000 * par['prefill_s']:.0f} ms, {par['prompt_evals']} prompt eval(s); "
            f"{par['steps']} steps, decode {1000 * par['decode_s'] / steps:.1f} ms/step, "
            f"sampler {1000 * par['sample_s'] / steps:.2f} ms/step, python+sampling outside "
            f"llama_decode {1000 * (par['step_s'] - par['decode_s']) / steps:.2f} ms/step; "
            f"sequential prompt evals {seq['prompt_evals']} "
            f"({seq['prompt_evaluated']} prompt tokens)"
        )
    print()
    print(
        f"other processes kept {min(others):.1f}-{max(others):.1f} of "
        f"{os.cpu_count()} CPUs busy just before the runs (repeat={repeat}, best kept)"
    )
    print("seq prompt / par prompt = prompt tokens evaluated (llama-cpp-python reuses the")
    print("cached prompt prefix between sequential calls; the engine evaluates prompt[:-1] once")
    print("and each sequence decodes the last prompt token inside its first batch).")
    print("py overhead = time of the engine's step loop outside llama_decode / llama_decode time.")
    if 8 in speedups:
        ratio, evals = speedups[8]
        print(f"n=8 speedup={ratio:.2f} prompt_evals={evals}")


details: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
others: list[float] = []


def _best(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The faster of two runs of the same side."""
    if not old or new["tokens"] / new["seconds"] > old["tokens"] / old["seconds"]:
        return new
    return old


if __name__ == "__main__":
    main()
