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


def sampling_for(loaded: Loaded, seed: int, temperature: float | None) -> Sampling:
    """Seeded sampling whose max_tokens strategies lower to their caps and the context."""
    sampling = Sampling(seed=seed, max_tokens=loaded.engine.context_length)
    return sampling if temperature is None else sampling.with_(temperature=temperature)
