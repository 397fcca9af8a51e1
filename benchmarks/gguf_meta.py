"""Reading a GGUF file's chat template: llama.cpp's vocab-only load against gguf.GGUFReader.

    python benchmarks/gguf_meta.py --model smollm2-135m [--model PATH ...] [--reader both]

For each model (a registered id or a .gguf path) prints the seconds `ponder`'s reader
(`ponder.engines._ggufmeta.template_info`: llama.cpp loads the vocabulary only) takes, and
the seconds `gguf.GGUFReader` (the `gguf` package, a dev dependency) takes to parse the same
header, which it does by building one numpy array per vocabulary entry. One run each, in a
fresh state; the machine's load is printed with them. The last line is
`gguf_meta: MODEL ponder=S s gguf=S s` per model.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def model_path(spec: str) -> Path:
    from ponder.registry import resolve_model

    return resolve_model(spec).path


def time_ponder(path: Path) -> float:
    from ponder.engines._ggufmeta import template_info

    started = time.perf_counter()
    info = template_info(path)
    elapsed = time.perf_counter() - started
    assert info is not None, f"{path} has no chat template"
    return elapsed


def time_gguf(path: Path) -> float:
    import gguf

    started = time.perf_counter()
    reader = gguf.GGUFReader(path)
    elapsed = time.perf_counter() - started
    assert "tokenizer.chat_template" in reader.fields
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--reader", choices=("both", "ponder", "gguf"), default="both")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, 1-minute load {load:.2f}")
    results = []
    for spec in args.model:
        path = model_path(spec)
        ours = time_ponder(path) if args.reader != "gguf" else float("nan")
        theirs = time_gguf(path) if args.reader != "ponder" else float("nan")
        print(f"{spec}: {path.stat().st_size / 1e6:,.0f} MB; ponder (llama.cpp vocab only) "
              f"{ours:.2f} s; gguf.GGUFReader {theirs:.2f} s")
        results.append(f"{spec} ponder={ours:.2f} s gguf={theirs:.2f} s")
    print("gguf_meta: " + "; ".join(results))


if __name__ == "__main__":
    main()
