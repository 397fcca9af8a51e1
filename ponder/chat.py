"""A conversation: earlier turns carried into each new prompt, their thinking left out.

The DeepSeek-R1 model cards advise against feeding a model its earlier thinking: only
the answers go back into the history. When the history no longer leaves the model room
to answer, the oldest turns are dropped.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass, field

from ponder.engines import Loaded
from ponder.engines.base import Message, Sampling
from ponder.runner import MIN_ANSWER_ROOM, make_task
from ponder.strategies.base import Clock, Task
from ponder.thinking import ThinkingStyle, build_messages


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str
    """What the model said after its thinking (or its extracted answer)."""


@dataclass
class Conversation:
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    turns: list[Turn] = field(default_factory=list)
    dropped: int = 0

    def messages(self, question: str, style: ThinkingStyle, system: str = "") -> list[Message]:
        """The question's messages with the earlier turns before its user message."""
        messages = build_messages(question, style, system)
        at = max(i for i, m in enumerate(messages) if m["role"] == "user")
        history: list[Message] = []
        for turn in self.turns:
            history.append({"role": "user", "content": turn.question})
            history.append({"role": "assistant", "content": turn.answer})
        return [*messages[:at], *history, *messages[at:]]

    def history(self) -> tuple[tuple[str, str], ...]:
        return tuple((t.question, t.answer) for t in self.turns)

    def add(self, question: str, answer: str) -> None:
        self.turns.append(Turn(question, answer))

    def task(self, question: str, loaded: Loaded, sampling: Sampling, *,
             budget: int | None = None, seconds: float | None = None,
             clock: Clock = time.monotonic, single_chain: bool = False) -> Task:
        """The turn's task: the question after as much history as the context holds."""
        task = make_task(question, loaded, sampling, budget=budget, seconds=seconds,
                         clock=clock, single_chain=single_chain)
        engine = loaded.engine
        while True:
            prompt = task.render(self.messages(task.question, task.style, task.system))
            room = engine.context_length - engine.count_tokens(prompt)
            if room >= MIN_ANSWER_ROOM or not self.turns:
                break
            self.turns.pop(0)
            self.dropped += 1
        task._prompt = prompt
        lead = task.led()
        if lead is not None and task.lead is not None:
            lead_prompt = lead.render(self.messages(task.question, task.style, lead.system))
            task.lead = dataclasses.replace(task.lead, prompt=lead_prompt)
        return task
