"""Verifiers score a (partial) solution; best-of-n and beam search rank by them.

A verifier is anything with ``score(task, question, solution) -> float`` in [0, 1]. Model
calls a verifier makes go through the task's engine and budget like any chain; an optional
``tokens_per_call`` attribute (default 1) says how many tokens strategies must keep back
for each call. Two ship:

- ``self``: the model itself is asked whether the solution is correct; the score is
  P("yes") read from the top logprobs of one generated token.
- ``arithmetic``: a deterministic checker of the "a op b = c" calculations a solution
  writes out; it costs no tokens. A process reward model would be a third.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from typing import Protocol

from ponder.events import Message, SequenceDone, TokenEvent
from ponder.strategies.base import Task
from ponder.strategies.scoring import p_yes
from ponder.thinking import CLOSE_THINKING, THINK_OPEN, prompt_opens_think

NEUTRAL = 0.5
"""The score of a solution that could not be judged (no budget left, nothing to check)."""


class Verifier(Protocol):
    def score(self, task: Task, question: str, solution: str) -> float:
        """How likely `solution` (complete or partial) is correct, from 0 to 1."""
        ...


VERIFY_PROMPT = (
    "Question:\n{question}\n\nProposed solution:\n{solution}\n\n"
    "Is the reasoning in this solution correct so far? Answer with one word: Yes or No."
)


class SelfVerifier:
    """The model judges the solution; the score is P("yes") of its one-token reply."""

    tokens_per_call = 1

    def __init__(self, top_logprobs: int = 10) -> None:
        self.top_logprobs = top_logprobs

    def score(self, task: Task, question: str, solution: str) -> float:
        remaining = task.budget.remaining()
        if remaining == 0 or task.interrupted:
            return NEUTRAL
        prompt = self._prompt(task, question, solution)
        sampling = task.sampling.with_(max_tokens=1, temperature=0.0, stop=(),
                                       top_logprobs=self.top_logprobs)
        gen = task.engine.start(prompt, sampling, n=1, budget=1)
        task.prompt_tokens += task.engine.count_tokens(prompt)
        score = NEUTRAL
        try:
            for event in gen:
                if isinstance(event, TokenEvent) and event.top_logprobs and score == NEUTRAL:
                    score = p_yes(event.top_logprobs)
                elif isinstance(event, SequenceDone):
                    task.budget.used += event.tokens
        finally:
            gen.close()
        return score

    def _prompt(self, task: Task, question: str, solution: str) -> str:
        room = task.engine.context_length - 64
        solution = _fit(task, question, solution, room)
        messages: list[Message] = [
            {"role": "user", "content": VERIFY_PROMPT.format(question=question,
                                                             solution=solution)}
        ]
        prompt = task.engine.chat_prompt(messages)
        if prompt_opens_think(prompt):
            return prompt + CLOSE_THINKING
        if task.style == "native":
            return prompt + THINK_OPEN + CLOSE_THINKING
        return prompt


def _fit(task: Task, question: str, solution: str, room: int) -> str:
    """Shorten the solution from the front (keeping its conclusion) until the prompt fits."""
    for _ in range(8):
        used = task.engine.count_tokens(VERIFY_PROMPT.format(question=question,
                                                             solution=solution))
        if used <= room or len(solution) < 16:
            return solution
        keep = int(len(solution) * room / used * 0.9)
        solution = "…" + solution[len(solution) - keep:]
    return solution


class ArithmeticChecker:
    """Checks the written-out calculations ("12 * 3 = 36"); no model call, no tokens.

    The score is (right + 1) / (checked + 2): a solution with no calculations gets 0.5,
    every wrong one pulls it down.
    """

    tokens_per_call = 0

    def score(self, task: Task, question: str, solution: str) -> float:
        right = checked = 0
        for ok in check_equations(solution):
            checked += 1
            right += ok
        return (right + 1) / (checked + 2)


_CLAUSE = re.compile(r",\s|;|:|=")
_LEFT = re.compile(r"[\d\s.,$+\-*/×÷x()]+$")
_RIGHT = re.compile(r"\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)(?![\d.]*\s*[-+*/×÷x]\s*\d)")
_OPERATOR = re.compile(r"\d[\s)$]*[-+*/×÷x][\s($]*\d")
_OPS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def check_equations(text: str) -> list[bool]:
    """For each "expression = number" in `text`, whether the arithmetic is right.

    The expression is the run of digits, operators and brackets just before an "=" on the
    same line; bare numbers ("x = 5") and right sides that are expressions are skipped.
    """
    results = []
    for line in text.splitlines():
        for at in (m.start() for m in re.finditer("=", line)):
            left = _LEFT.search(_CLAUSE.split(line[:at])[-1])
            right = _RIGHT.match(line[at + 1:])
            if left is None or right is None or not _OPERATOR.search(left.group()):
                continue
            value = evaluate(left.group())
            if value is None:
                continue
            stated = float(right.group(1).replace(",", ""))
            results.append(abs(value - stated) <= 1e-6 * max(1.0, abs(value))
                           or round(value, 2) == round(stated, 2))
    return results


def evaluate(expression: str) -> float | None:
    """The value of a plain arithmetic expression, or None if it is not one."""
    cleaned = (expression.replace("$", "").replace(",", "").replace("×", "*")
               .replace("÷", "/").replace("x", "*").strip())
    try:
        tree = ast.parse(cleaned, mode="eval")
        return _eval(tree.body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None


def _eval(node: ast.expr) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left), _eval(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    raise ValueError("not plain arithmetic")


VerifierFactory = Callable[[int], Verifier]
VERIFIERS: dict[str, VerifierFactory] = {
    "self": SelfVerifier,
    "arithmetic": lambda _top_logprobs: ArithmeticChecker(),
}


def register_verifier(name: str, factory: VerifierFactory) -> None:
    """Add a verifier (e.g. a process reward model) selectable with -o verifier=NAME."""
    VERIFIERS[name] = factory


def make_verifier(name: str, top_logprobs: int = 10) -> Verifier:
    return VERIFIERS[name](top_logprobs)


def tokens_per_call(verifier: Verifier) -> int:
    """Tokens one verifier call generates (optional attribute; model verifiers take 1)."""
    return int(getattr(verifier, "tokens_per_call", 1))
