"""From a question to a strategy run: validation, effort plans, and the JSON record."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from ponder.engines import Loaded
from ponder.engines.base import Sampling
from ponder.errors import ContextOverflowError, InputError
from ponder.events import Result, StrategyEvent
from ponder.strategies import get_strategy
from ponder.strategies.base import Budget, Clock, Lead, StrategyRun, StrategySpec, Task
from ponder.strategies.effort import DEFAULT_EFFORT, get_effort
from ponder.summary import summarize

MIN_ANSWER_ROOM = 32
MAX_QUESTION_CHARS = 200_000


@dataclass
class Plan:
    """The strategy and settings chosen from --effort, --strategy and -o options."""

    effort: str | None
    spec: StrategySpec[Any]
    options: Any

    def settings(self) -> dict[str, Any]:
        if is_dataclass(self.options) and not isinstance(self.options, type):
            return asdict(self.options)
        return {}


def make_plan(
    effort: str | None, strategy: str | None, overrides: Mapping[str, str] | None = None
) -> Plan:
    """Effort picks a strategy and defaults; --strategy replaces it; -o options win."""
    preset = get_effort(effort or DEFAULT_EFFORT)
    name = strategy or preset.strategy
    base = dict(preset.options) if name == preset.strategy else {}
    base.update(overrides or {})
    spec = get_strategy(name)
    return Plan(effort, spec, spec.make_options(base))


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`-o key=value` pairs into a dict, with a clear error for malformed ones."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"option '{pair}' must look like key=value")
        out[key.strip()] = value.strip()
    return out


def make_task(
    question: str,
    loaded: Loaded,
    sampling: Sampling,
    *,
    budget: int | None = None,
    seconds: float | None = None,
    clock: Clock = time.monotonic,
    single_chain: bool = False,
) -> Task:
    """A validated task: a non-empty question whose prompt leaves room to answer.

    `single_chain` tasks (cot, budget) get the family's one-chain prompt and turn start
    (every task does when the family sets `plain_chains`). A prompted model asked with that
    plain prompt and no <think> prefill reasons in the open: its working is its thinking and
    its closing paragraph the answer (`Task.implicit_thinking`). Other tasks ask their
    greedy first chain that way too (`Task.lead`), so it is the chain `low` runs."""
    question = question.strip()
    if not question:
        raise InputError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise ContextOverflowError(f"the question is {len(question):,} characters; "
                                   f"the limit is {MAX_QUESTION_CHARS:,}")
    if budget is not None and budget < 1:
        raise InputError("--budget must be at least 1 token")
    d = loaded.defaults
    one_prompt = single_chain or d.plain_chains
    system = d.single_system if one_prompt else ""
    prefix = d.assistant_prefix if d.single_prefill or not one_prompt else ""
    lead_system = d.single_system
    lead_prefix = d.assistant_prefix if d.single_prefill else ""
    lead = None
    if (lead_system, lead_prefix) != (system, prefix):
        lead = Lead(lead_system, lead_prefix, _reasons_openly(loaded, lead_system, lead_prefix))
    task = Task(question, loaded.engine, loaded.style, sampling, Budget(budget, seconds, clock),
                system=system, prefix=prefix,
                implicit_thinking=_reasons_openly(loaded, system, prefix), lead=lead,
                greedy_lead=d.greedy)
    used = loaded.engine.count_tokens(task.prompt)
    room = loaded.engine.context_length - used
    if room < MIN_ANSWER_ROOM:
        raise ContextOverflowError(
            f"the question takes {used:,} tokens; the model's context holds "
            f"{loaded.engine.context_length:,} (with room to answer)"
        )
    return task


def _reasons_openly(loaded: Loaded, system: str, prefix: str) -> bool:
    """Whether a prompted model asked with its family's own system prompt and no <think>
    prefill writes its working in the open (`Task.implicit_thinking`)."""
    return loaded.style == "prompted" and bool(system) and not prefix


def run_plan(task: Task, plan: Plan) -> StrategyRun:
    return plan.spec.run(task, plan.options)


def drive(
    run: StrategyRun,
    handle: Callable[[StrategyEvent], None],
    stop: Callable[[], bool] | None = None,
) -> Result:
    """Run a strategy to its Result. Ctrl-C (or `stop()` turning true) makes it wrap up."""
    pending_exc: BaseException | None = None
    stopped = False
    while True:
        if not stopped and stop is not None and stop():
            stopped, pending_exc = True, KeyboardInterrupt()
        try:
            event = run.throw(pending_exc) if pending_exc else next(run)
            pending_exc = None
            handle(event)
        except StopIteration as done:
            result: Result = done.value
            return result
        except KeyboardInterrupt as exc:
            if inspect.getgeneratorstate(run) == inspect.GEN_CLOSED:
                return Result(None, "", "", "interrupted", interrupted=True)
            stopped, pending_exc = True, exc


def drain(run: StrategyRun) -> Result:
    """Run a strategy to its Result without rendering (the non-streaming fold)."""
    return drive(run, lambda _event: None)


def result_record(
    question: str, result: Result, loaded: Loaded, plan: Plan, seconds: float
) -> dict[str, Any]:
    """The JSON object `ponder ask --json` prints (and `ponder solve` builds on)."""
    return {
        "question": question,
        "answer": result.answer,
        "text": result.text,
        "thinking": result.thinking,
        "model": loaded.model_id,
        "effort": plan.effort,
        "strategy": plan.spec.name,
        "settings": plan.settings(),
        "run": result.settings,
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "thinking_tokens": result.thinking_tokens,
            "summary_tokens": result.summary_tokens,
        },
        "seconds": round(seconds, 3),
        "finish_reason": result.finish_reason,
        "interrupted": result.interrupted,
        "samples": [s.to_json() for s in result.samples],
        "votes": result.votes,
        **summary_fields(result),
    }


def summary_fields(result: Result) -> dict[str, str | None]:
    """The JSON `summary` (lines joined by newlines) and `summary_source`: the model's own
    when it wrote one (`--summary model`), else the extractive one; None without thinking."""
    if result.summary is not None:
        return {"summary": result.summary, "summary_source": "model"}
    lines = summarize(result.thinking, result.answer) if result.thinking.strip() else []
    return {"summary": "\n".join(lines) or None,
            "summary_source": "extractive" if lines else None}
