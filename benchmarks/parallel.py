"""Parallel decoding benchmark, per weight format: N sequential llama-cpp-python completions
vs one batched LlamaCppEngine generation of N sequences.

    python benchmarks/parallel.py --model ID_OR_PATH --n 1 8 [--formats download q4_0 q8_0]
        [--tokens 128] [--threads T] [--repeat R]

Rows per format: the file as downloaded, and copies requantized from it by llama.cpp
(`ponder.optimize.quantize`, the same call `ponder models optimize` makes) into a temporary
folder. Every measurement runs in its own worker process (so each peak RSS is its own), with
the same prompt, sampling settings, seeds (seed + i), thread count and engine settings (the
engine's defaults; the header names them). `ponder`'s default format is the one the registry
names for the model (`optimize` in models.toml; else the download). Ends with one line

    n=8 speedup=X.XX prompt_evals=P vs_download=Y.YY

speedup: ponder's N=8 tokens/s over N=8 sequential calls, both on the default format's file;
vs_download: ponder's N=8 tokens/s on the default format over the sequential baseline on the
file as downloaded. Only ratios measured side by side in one run are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
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


def peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM: ru_maxrss would include the parent's, kept across
    exec, e.g. from requantizing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- workers


def work_engine(model: Path, args: dict[str, Any]) -> dict[str, Any]:
    """One batched generation of n sequences through LlamaCppEngine (default settings)."""
    from ponder.engines.base import Sampling, generate
    from ponder.engines.llamacpp import LlamaCppEngine

    n = args["n"]
    engine = LlamaCppEngine(model, n_ctx=args["n_ctx"], n_slots=max(n, 1),
                            n_threads=args["threads"])
    prompt = args["prompt"]
    sampling = Sampling(max_tokens=args["tokens"], **SAMPLING)
    generate(engine, prompt, sampling.with_(max_tokens=4), n=n)  # warm-up
    engine.reset_cache()  # the timed run evaluates its prompt itself
    t0 = time.perf_counter()
    out = generate(engine, prompt, sampling, n=n)
    elapsed = time.perf_counter() - t0
    st = engine.last_stats
    engine.close()
    if st is None:
        raise RuntimeError("the engine reported no statistics for the timed run")
    return {
        "tokens": sum(c.tokens for c in out), "seconds": elapsed,
        "prompt_tokens": st.prompt_tokens,
        "prompt_evaluated": st.prompt_evaluated + st.seq_start_tokens,
        "prompt_evals": st.prompt_evals, "prefill_s": st.prefill_s, "steps": st.steps,
        "decode_s": st.decode_s, "sample_s": st.sample_s, "step_s": st.step_s,
        "rss_mib": peak_rss_mib(),
    }


def work_sequential(model: Path, args: dict[str, Any]) -> dict[str, Any]:
    """n sequential Llama.create_completion calls, seeded seed + i."""
    import llama_cpp

    llm = llama_cpp.Llama(str(model), n_ctx=args["n_ctx"], n_threads=args["threads"],
                          n_threads_batch=args["threads"], flash_attn=args["flash_attn"],
                          verbose=False)
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
    prompt = args["prompt"]
    llm.create_completion(prompt, max_tokens=4, seed=0, repeat_penalty=1.0, **settings)
    llm.reset()  # type: ignore[no-untyped-call]  # the timed run evaluates its prompt itself
    evaluated.clear()
    tokens = 0
    t0 = time.perf_counter()
    for i in range(args["n"]):
        first_eval[0] = True
        res: Any = llm.create_completion(prompt, max_tokens=args["tokens"],
                                         seed=SAMPLING["seed"] + i, repeat_penalty=1.0,
                                         **settings)
        tokens += res["usage"]["completion_tokens"]
    elapsed = time.perf_counter() - t0
    return {
        "tokens": tokens, "seconds": elapsed, "prompt_evaluated": sum(evaluated),
        "prompt_evals": sum(1 for e in evaluated if e > 1), "rss_mib": peak_rss_mib(),
    }


WORKERS = {"engine": work_engine, "sequential": work_sequential}


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
    ap.add_argument("--n", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--formats", nargs="+", default=["download", "q4_0", "q8_0"],
                    help="formats to requantize the download into; the download and the "
                         "model's default format (models.toml `optimize`) always run")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None, help="default: free cores")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per side, format and N, interleaved; best is kept")
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("payload", nargs="?", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.worker:
        result = WORKERS[opts.worker](Path(opts.model), json.loads(opts.payload))
        print(json.dumps(result))
        return
    from ponder.catalog import format_key
    from ponder.registry import resolve_model

    resolved = resolve_model(opts.model)  # the download: never an optimized copy
    default = resolved.entry.optimize if resolved.entry else ""
    formats = list(opts.formats)  # the download and the default always run: the last line
    for at, needed in enumerate(("DOWNLOAD", default)):
        if needed and needed not in {format_key(f) for f in formats}:
            formats.insert(at, needed)
    with tempfile.TemporaryDirectory(prefix="ponder-formats-") as tmp:
        files = make_formats(resolved.path, formats, Path(tmp), opts.threads)
        run(files, default or "download", opts.n, opts.tokens, opts.threads,
            max(1, opts.repeat))


def make_formats(download: Path, formats: list[str], tmp: Path,
                 threads: int | None) -> dict[str, Path]:
    """{"download": the file, "Q4_0": a requantized copy, ...} in the order asked."""
    from ponder.optimize import normalize_format
    from ponder.requantize import quantize

    files: dict[str, Path] = {}
    for name in formats:
        if name.lower() == "download":
            files["download"] = download
            continue
        fmt = normalize_format(name)
        path = tmp / f"{download.stem}.{fmt}.gguf"
        t0 = time.perf_counter()
        quantize(download, path, fmt, threads)
        print(f"requantized to {fmt} in {time.perf_counter() - t0:.1f} s "
              f"({path.stat().st_size / 2**20:.0f} MiB)", file=sys.stderr)
        files[fmt] = path
    return files


def run(files: dict[str, Path], default: str, ns: list[int], tokens: int,
        threads: int | None, repeat: int) -> None:
    import _machine

    from ponder.engines.llamacpp import DEFAULT_FLASH_ATTN, LlamaCppEngine, free_cores

    download = files.get("download") or next(iter(files.values()))
    with LlamaCppEngine(download, n_ctx=256, n_slots=1) as probe:
        prompt = probe.chat_prompt([{"role": "user", "content": QUESTION}])
        prompt_tokens = probe.count_tokens(prompt)
        defaults = (f"kv_unified=1, n_batch={probe.n_batch}, n_ubatch=min(n_batch, 512), "
                    f"KV {probe.kv_type}, flash attention {'on' if probe.flash_attn else 'off'}")
    free = free_cores()
    threads = threads or free
    for line in _machine.header_lines():
        print(line)
    print(f"model: {download.name} ({download.stat().st_size / 2**20:.0f} MiB as downloaded)")
    sizes = ", ".join(f"{k} {p.stat().st_size / 2**20:.0f} MiB" for k, p in files.items())
    print(f"formats: {sizes}; ponder's default format: {default}")
    print(f"threads: {threads} (free cores measured now: {free}; n_threads_batch = n_threads)")
    print(f"engine settings (its defaults): n_slots=N, {defaults}; sequential baseline: "
          f"llama_cpp.Llama, same threads and flash attention")
    print(f"prompt: {prompt_tokens} tokens (chat template of the GGUF); {tokens} tokens per "
          "sequence")
    print()
    base = {"n_ctx": 512 + tokens, "threads": threads, "tokens": tokens, "prompt": prompt,
            "flash_attn": DEFAULT_FLASH_ATTN}
    results: dict[tuple[str, int], tuple[dict[str, Any], dict[str, Any]]] = {}
    for n in ns:
        for name, path in files.items():
            seq: dict[str, Any] = {}
            par: dict[str, Any] = {}
            for _ in range(repeat):
                others.append(_busy())
                seq = _best(seq, run_worker("sequential", path, {**base, "n": n}))
                others.append(_busy())
                par = _best(par, run_worker("engine", path, {**base, "n": n}))
            results[(name, n)] = (seq, par)
    report(results, files, default, ns, repeat)


def report(results: dict[tuple[str, int], tuple[dict[str, Any], dict[str, Any]]],
           files: dict[str, Path], default: str, ns: list[int], repeat: int) -> None:
    width = max(8, *(len(name) for name in files))
    header = (f"{'format':<{width}} {'N':>3} | {'seq tok/s':>9} {'seq RSS':>8} | {'par tok/s':>9} "
              f"{'par prompt':>10} {'par RSS':>8} | {'speedup':>7} {'vs dl seq':>9} | "
              f"{'py overhead':>11}")
    print(header)
    print("-" * len(header))
    for n in ns:
        dl_seq = results.get(("download", n), (None, None))[0]
        for name in files:
            seq, par = results[(name, n)]
            seq_rate, par_rate = rate(seq), rate(par)
            vs_dl = f"{par_rate / rate(dl_seq):>8.2f}x" if dl_seq else f"{'-':>9}"
            overhead = (par["step_s"] - par["decode_s"]) / max(par["decode_s"], 1e-9)
            print(f"{name:<{width}} {n:>3} | {seq_rate:>9.1f} {seq['rss_mib']:>6.0f}Mi | "
                  f"{par_rate:>9.1f} {par['prompt_evaluated']:>10} {par['rss_mib']:>6.0f}Mi | "
                  f"{par_rate / seq_rate:>6.2f}x {vs_dl} | {100 * overhead:>10.1f}%")
    print()
    for (name, n), (seq, par) in results.items():
        steps = max(par["steps"], 1)
        print(f"{name} N={n}: engine prompt {par['prompt_tokens']} tokens, prefill "
              f"{1000 * par['prefill_s']:.0f} ms, {par['prompt_evals']} prompt eval(s); "
              f"{par['steps']} steps, decode {1000 * par['decode_s'] / steps:.1f} ms/step, "
              f"sampler {1000 * par['sample_s'] / steps:.2f} ms/step, python+sampling outside "
              f"llama_decode {1000 * (par['step_s'] - par['decode_s']) / steps:.2f} ms/step; "
              f"sequential: {seq['tokens']} tokens in {seq['seconds']:.1f} s, "
              f"{seq['prompt_evals']} prompt eval(s)")
    print()
    import _machine

    print(f"other processes kept {min(others):.1f}-{max(others):.1f} of {os.cpu_count()} CPUs "
          f"busy just before the runs (repeat={repeat}, best kept); after: {_machine.uptime()}")
    print("speedup = par tok/s / seq tok/s on the same file; vs dl seq = par tok/s / the "
          "sequential tok/s on the file as downloaded, same N.")
    print("py overhead = time of the engine's step loop outside llama_decode / llama_decode time.")
    if ("download", 8) in results and (default, 8) in results:
        seq, par = results[(default, 8)]
        dl_seq = results[("download", 8)][0]
        print(f"n=8 speedup={rate(par) / rate(seq):.2f} prompt_evals={par['prompt_evals']} "
              f"vs_download={rate(par) / rate(dl_seq):.2f}")


others: list[float] = []


def rate(side: dict[str, Any]) -> float:
    return float(side["tokens"]) / max(float(side["seconds"]), 1e-9)


def _busy() -> float:
    from ponder.engines.llamacpp import busy_cpus

    return busy_cpus()


def _best(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The faster of two runs of the same side."""
    return new if not old or rate(new) > rate(old) else old


if __name__ == "__main__":
    main()
