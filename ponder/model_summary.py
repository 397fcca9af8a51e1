"""A summary of a chain's thinking written by the loaded model itself (`--summary model`).

After the answer, one more generation on the same engine, greedy and at most
:data:`SUMMARY_TOKENS` tokens: the model reads its own thinking and says in a few short
lines how it reached the answer. The extractive summary (:mod:`ponder.summary`) costs no
tokens and stays the default; this one is skipped when the run's budget is spent.

The prompt is a fresh one, not the winning chain continued: neither engine keeps a finished
chain's KV (the llama.cpp engine's holders keep the last *prompt*, not the generated tokens,
and a server keeps nothing), so continuing the chain would prefill its thinking all the
same, and the chat templates of reasoning models drop an earlier turn's thinking. The
prompt opens with the question's own turns (system prompt, question), so the llama.cpp
engine reuses that prefix from the prompt it kept; the thinking goes into a user turn.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from ponder.engines._openai_prompts import CHAT_MARK
from ponder.engines.base import Sampling, generate
from ponder.events import Message, Result
from ponder.strategies.base import Budget, Task
from ponder.thinking import THINK_CLOSE, THINK_OPEN, build_messages, prompt_opens_think

SUMMARY_TOKENS = 60
SUMMARY_LINES = 6
PROMPT_MARGIN = 16
"""Tokens kept free besides the summary's own: template and tokenizer boundary slack."""
OMITTED = "[… the start of the reasoning is left out …]\n"
REQUEST = (
    "Summarize the reasoning below in at most {lines} very short lines (a few words each): "
    "the main steps with their key results, any checks or changes of mind, and the "
    "conclusion. Write only the summary.\n\nReasoning:\n\"\"\"\n{thinking}\n\"\"\""
)
"""The request, instruction first: on SmolLM2-135M (a four-step trace, greedy), an
instruction after the reasoning was echoed back or answered with the answer alone; before
it, the model listed the steps with their results."""

EMPTY_THINKING = f"{THINK_OPEN}\n\n{THINK_CLOSE}\n\n"
TokenCounter = Callable[[str], int]
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


@dataclass(frozen=True)
class ModelSummary:
    """What the summary generation wrote and cost."""

    text: str
    tokens: int
    prompt_tokens: int


def skip_reason(budget: Budget) -> str | None:
    """Why the run has no room left for a summary (None: it has)."""
    if budget.out_of_time():
        return "the time limit is spent"
    remaining = budget.remaining()
    if remaining is not None and remaining < SUMMARY_TOKENS:
        return "the token budget is spent"
    return None


def write_summary(task: Task, result: Result) -> ModelSummary:
    """The model's own summary of `result.thinking` (engine errors propagate)."""
    prompt = summary_prompt(task, result)
    sampling = Sampling(temperature=0.0, top_k=1, seed=task.sampling.seed,
                        max_tokens=SUMMARY_TOKENS)
    done = generate(task.engine, prompt, sampling, budget=SUMMARY_TOKENS)
    text = clean(done[0].text) if done else ""
    tokens = done[0].tokens if done else 0
    return ModelSummary(text, tokens, task.engine.count_tokens(prompt))


def with_summary(result: Result, summary: ModelSummary) -> Result:
    """`result` carrying the summary (None if it is empty), its tokens counted in the
    usage all the same."""
    return replace(result, summary=summary.text or None, summary_tokens=summary.tokens,
                   completion_tokens=result.completion_tokens + summary.tokens,
                   prompt_tokens=result.prompt_tokens + summary.prompt_tokens)


def summary_prompt(task: Task, result: Result) -> str:
    """The question's turns, the answer, and a user turn asking for the summary, with the
    thinking cut to what the context holds.

    A long thinking loses its start, not its end: the end holds the conclusion, the checks
    and the result the summary has to name. The assistant turn opens with an empty thinking
    block, so that a reasoning model answers at once rather than think again (not for a
    model that reasons without tags, nor through a server's chat completions).
    """
    engine = task.engine
    answer = result.text.strip() or (result.answer or "")
    base = build_messages(task.question, task.style, task.system)
    base.append({"role": "assistant", "content": answer})

    def render(thinking: str) -> str:
        request = REQUEST.format(thinking=thinking, lines=SUMMARY_LINES, tokens=SUMMARY_TOKENS)
        messages: list[Message] = [*base, {"role": "user", "content": request}]
        prompt = engine.chat_prompt(messages)
        if prompt.startswith(CHAT_MARK) or task.implicit_thinking:
            return prompt  # a server's chat completions, or a model that uses no tags
        if prompt_opens_think(prompt):
            return prompt + f"\n{THINK_CLOSE}\n\n"
        return prompt + EMPTY_THINKING

    room = engine.context_length - SUMMARY_TOKENS - PROMPT_MARGIN
    overhead = engine.count_tokens(render(""))
    thinking = keep_end(result.thinking.strip(), room - overhead, engine.count_tokens)
    return render(thinking)


def keep_end(text: str, limit: int, count: TokenCounter) -> str:
    """`text` if it fits in `limit` tokens, else its longest end that does (cut at a space),
    behind a note that the start is left out."""
    if count(text) <= limit:
        return text
    limit -= count(OMITTED)
    lo, hi = 0, len(text)  # find the smallest cut whose tail fits
    while lo < hi:
        mid = (lo + hi) // 2
        if count(text[mid:]) <= limit:
            hi = mid
        else:
            lo = mid + 1
    space = text.find(" ", lo)
    cut = space + 1 if 0 <= space < lo + 40 else lo
    return OMITTED + text[cut:] if cut < len(text) else ""


def clean(text: str) -> str:
    """The summary as lines: think tags, bullets and a heading off, empty lines out, at
    most :data:`SUMMARY_LINES` lines."""
    if THINK_CLOSE in text:
        text = text.rsplit(THINK_CLOSE, 1)[1]
    text = text.replace(THINK_OPEN, "")
    lines = [_BULLET.sub("", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if lines and lines[0].endswith(":") and len(lines[0].split()) <= 4:
        lines = lines[1:]  # a heading ("Summary:", "The main steps are:")
    return "\n".join(lines[:SUMMARY_LINES])


def lines_of(summary: str) -> list[str]:
    """The summary's lines, as the renderer shows them."""
    return [line for line in summary.splitlines() if line.strip()][:SUMMARY_LINES]
