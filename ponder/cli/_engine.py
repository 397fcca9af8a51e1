"""Loading the engine and the base sampling settings, shared by ask, solve and eval."""

from __future__ import annotations

from rich.console import Console

from ponder.engines import EngineOptions, Loaded, load_engine
from ponder.engines.base import Sampling
from ponder.errors import Interrupted


def load(err: Console, engine: str | None, options: EngineOptions) -> Loaded:
    """Load the model (once per process), with a spinner on stderr; Ctrl-C ends quietly."""
    try:
        with err.status("Loading model…", spinner="dots"):
            return load_engine(engine, options)
    except KeyboardInterrupt:
        raise Interrupted("interrupted while loading the model") from None


def sampling_for(
    loaded: Loaded, seed: int, temperature: float | None, *, single_chain: bool = False
) -> Sampling:
    """The family's sampling settings, seeded; max_tokens is lowered by strategies to their
    caps and the context. One-chain strategies use the family's `single_temperature`
    (greedy for small instruct models); `--temperature` overrides both."""
    d = loaded.defaults
    if temperature is None:
        temperature = d.single_temperature if single_chain else d.temperature
    return Sampling(temperature=temperature, top_p=d.top_p, top_k=d.top_k, min_p=d.min_p,
                    seed=seed, max_tokens=loaded.engine.context_length)
