"""What every strategy gets (a Task) and how strategies are described and configured."""

from __future__ import annotations

import dataclasses
import difflib
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, get_type_hints

from ponder.engines.base import Engine, Message, Sampling
from ponder.errors import InputError
from ponder.events import Result, StrategyEvent
from ponder.strategies.memory import ChainMemory
from ponder.thinking import ThinkingStyle, build_messages, prompt_opens_think

Clock = Callable[[], float]


@dataclass
class Budget:
    """Tokens and wall-clock time one question may use, across every chain and call."""

    tokens: int | None = None
    seconds: float | None = None
    clock: Clock = time.monotonic
    used: int = 0
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def remaining(self) -> int | None:
        return None if self.tokens is None else max(0, self.tokens - self.used)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def out_of_time(self) -> bool:
        return self.seconds is not None and self.elapsed() >= self.seconds

    def exhausted(self) -> bool:
        return self.remaining() == 0 or self.out_of_time()


@dataclass(frozen=True)
class Lead:
    """How the greedy first chain of a vote is asked when that differs from the sampled
    chains: the family's one-chain prompt and turn start, the way `low` asks (see
    `Task.led`). On Qwen2.5-Coder the greedy chain is 5 points better on the plain prompt
    than with a prefilled <think>, while sampled chains vote better prefilled."""

    system: str
    prefix: str
    implicit_thinking: bool
    prompt: str | None = None
    """The rendered prompt, when the caller builds it (a chat turn carries its history)."""


@dataclass
class Task:
    """One question to answer with one engine, plus the shared accounting."""

    question: str
    engine: Engine
    style: ThinkingStyle
    sampling: Sampling
    budget: Budget
    prompt_tokens: int = 0
    interrupted: bool = False
    system: str = ""
    """The system prompt for prompted models ("" = the usual one)."""
    prefix: str = ""
    """Written at the start of the assistant turn (e.g. "<think>\\n"), unless the chat
    template already ends with it."""
    implicit_thinking: bool = False
    """The model reasons without think tags (an instruct model on a plain prompt): output
    starts as thinking, and a chain's closing paragraph becomes its answer."""
    lead: Lead | None = None
    """How the greedy first chain is asked, when not like the others (None: the same)."""
    greedy_lead: bool = True
    """Whether a `greedy_first` chain is decoded greedily (the family's `greedy`): R1, Qwen3
    and QwQ cards advise against greedy decoding, so there it is sampled like the rest."""
    _prompt: str | None = None
    memory: ChainMemory | None = None
    """Earlier chains to build on and to add this task's chains to (the run log), if any."""

    @property
    def prompt(self) -> str:
        if self._prompt is None:
            self._prompt = self.render(build_messages(self.question, self.style, self.system))
        return self._prompt

    def render(self, messages: Sequence[Message]) -> str:
        """`messages` through the chat template, then the assistant-turn prefix."""
        rendered = self.engine.chat_prompt(messages)
        prefix = self.prefix
        if prefix and rendered.rstrip().endswith(prefix.strip()):
            prefix = ""
        return rendered + prefix

    def led(self) -> Task | None:
        """The task the greedy first chain runs on (None: it runs on this one). It shares
        this task's budget and memory; its prompt tokens and interruption are its own."""
        if self.lead is None:
            return None
        lead = self.lead
        return dataclasses.replace(self, system=lead.system, prefix=lead.prefix,
                                   implicit_thinking=lead.implicit_thinking, lead=None,
                                   _prompt=lead.prompt, prompt_tokens=0)

    @property
    def opens_think(self) -> bool:
        return prompt_opens_think(self.prompt)

    @property
    def thinks_first(self) -> bool:
        """Output starts inside thinking: the template opened <think>, the model is native, or
        it reasons in the open (`implicit_thinking`)."""
        return self.implicit_thinking or self.opens_think or self.style == "native"


StrategyRun = Generator[StrategyEvent, None, Result]


class StrategyOptions(Protocol):
    """What is asked of every strategy's options dataclass beyond its fields."""

    @property
    def max_chains(self) -> int:
        """The most chains (live sequences) the strategy runs at once for one question:
        how many of an engine's slots one problem takes when problems run side by side."""
        ...


OptionsT = TypeVar("OptionsT", bound=StrategyOptions)


@dataclass(frozen=True)
class StrategySpec(Generic[OptionsT]):
    """A registered strategy: its name, help line, options dataclass and run function."""

    name: str
    help: str
    options: type[OptionsT]
    run: Callable[[Task, OptionsT], StrategyRun]
    single_chain: bool = False
    """Runs one chain: sampled at the family's `single_temperature` (greedy on instruct)."""

    def make_options(self, raw: Mapping[str, Any]) -> OptionsT:
        return parse_options(self.options, raw, self.name)


def parse_options(cls: type[OptionsT], raw: Mapping[str, Any], owner: str) -> OptionsT:
    """Build an options dataclass from strings or values, with one-line errors."""
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean {close[0]}?" if close else f"{owner} takes: {', '.join(names)}"
            raise InputError(f"unknown option '{key}' for strategy {owner}", hint)
        values[name] = _coerce(value, hints[name], key)
    options = cls(**values)
    check = getattr(options, "validate", None)
    if callable(check):
        check()
    return options


def _coerce(value: Any, hint: Any, key: str) -> Any:
    if not isinstance(value, str):
        return value
    kind = hint if isinstance(hint, type) else next(
        (t for t in getattr(hint, "__args__", ()) if t is not type(None)), str
    )
    if value.lower() in ("none", "null") and type(None) in getattr(hint, "__args__", ()):
        return None
    try:
        if kind is bool:
            if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(value)
            return value.lower() in ("1", "true", "yes", "on")
        return kind(value)
    except ValueError:
        raise InputError(f"option {key}={value!r} is not a valid {kind.__name__}") from None


def require(condition: bool, message: str) -> None:
    """Raise an InputError when an option check fails (used by options' validate())."""
    if not condition:
        raise InputError(message)
