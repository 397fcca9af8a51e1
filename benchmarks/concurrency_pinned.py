"""`benchmarks/concurrency.py` of any tree, with the settings of ef3df7a pinned.

    PYTHONPATH=TREE python benchmarks/concurrency_pinned.py TREE [concurrency.py options]

Runs TREE's own benchmarks/concurrency.py (so that an older tree can be measured side by
side with this one) with what ef3df7a ran for `--effort low`: the `cot` strategy with
think_cap 256, `Sampling`'s own defaults (temperature 0.6, top_p 0.95, top_k 40, min_p
0.05, seed 0) and no family defaults (no `<think>` prefill, no one-chain prompt). Later
trees re-tuned `low` (think_cap 1024, greedy) and sample with the family's settings
(SmolLM2: top_k 0, which costs about 0.7 ms per token in llama.cpp's sampler against
0.06 ms), so their texts, lengths and sampling costs differ from ef3df7a's.

After each concurrency's row it also prints the process's CPU seconds per token (all
threads), which, unlike seconds, hardly depends on what else the machine runs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    tree = Path(sys.argv.pop(1)).resolve()
    sys.path.insert(0, str(tree))
    spec = importlib.util.spec_from_file_location(
        "concurrency", tree / "benchmarks" / "concurrency.py")
    if spec is None or spec.loader is None:
        print(f"no benchmarks/concurrency.py in {tree}", file=sys.stderr)
        return 2
    bench: Any = importlib.util.module_from_spec(spec)
    sys.modules["concurrency"] = bench
    spec.loader.exec_module(bench)
    sampling_cls: Any = importlib.import_module("ponder.engines.base").Sampling
    load, plan, run = bench.load_engine, bench.make_plan, bench.run

    def load_engine(*args: Any, **kwargs: Any) -> Any:
        loaded = load(*args, **kwargs)
        if hasattr(loaded, "defaults"):  # trees with family defaults: the neutral ones
            defaults = type(loaded.defaults)()
            loaded = dataclasses.replace(loaded, defaults=defaults)
        return loaded

    def make_plan(effort: str, strategy: str | None, overrides: dict[str, Any]) -> Any:
        return plan(effort, "cot", {"think_cap": 256})

    def sampling_for(loaded: Any, seed: int, temperature: float | None, **_: Any) -> Any:
        return sampling_cls(seed=seed, max_tokens=loaded.engine.context_length)

    def timed_run(*args: Any) -> Any:
        cpu = time.process_time()
        row = run(*args)
        cpu = time.process_time() - cpu
        print(f"# K={row.concurrency}: {row.tokens} tokens, {cpu:.1f} CPU s, "
              f"{1000 * cpu / max(row.tokens, 1):.2f} CPU ms/token, "
              f"load {os.getloadavg()[0]:.2f}, nice {os.nice(0)}", flush=True)
        return row

    bench.load_engine, bench.make_plan = load_engine, make_plan
    bench.sampling_for, bench.run = sampling_for, timed_run
    return int(bench.main())


if __name__ == "__main__":
    raise SystemExit(main())
