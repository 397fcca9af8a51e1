"""`mcts`: Monte Carlo tree search over reasoning steps, on the engine's forks.

Nodes are partial solutions cut at paragraph breaks, as `beam` cuts them. Each iteration:

1. Selection: from the root, the child with the highest UCT score,
   value + c * sqrt(ln N(parent) / N(child)), down to a leaf (unvisited children first).
2. Expansion: one generation from the leaf's text with `expand` sequences (near the end of
   --budget, only as many as the tokens left can finish at the size children have had);
   each writes one step (to its first blank line, at most `step_tokens`) that becomes a
   child of the leaf.
3. Simulation: each child's sequence goes on past its step as the child's rollout, until it
   states a boxed answer or has written `rollout_tokens`; with `rollouts` > 1 the child's
   live sequence is forked at its step break for the extra rollouts.
4. The verifier scores the new children; every rollout is a visit of its node and all its
   ancestors (backpropagation). Values are in :mod:`ponder.strategies.mcts_tree`.

KV: the leaf's text is evaluated once into the engine's prompt holder (reusing the prefix
the engine already holds) and every child's slot copies it; a rollout continues its child's
own sequence and a fork copies the child's KV, so nothing is evaluated twice within an
iteration. A child whose step repeats a sibling's is pruned on the spot: its sequence is
aborted, which frees its slot for the others. Between iterations no sequence is live, so a
subtree that is done (every path ended, or at `max_depth`) holds nothing. What the engine
no longer holds is evaluated again: a finished sequence cannot be forked, and the `self`
verifier's prompts replace the question's in the engine's holder, so each expansion
re-evaluates the question and the leaf's path (benchmarks/mcts.py reports the prefill).

The search stops when --budget, --time or `iterations` run out, on Ctrl-C, or when no leaf
is left to expand. The answer is the one with the highest visit-weighted value; with no
answered rollout, the best path's longest rollout is completed with an answer from tokens
held back for that (released as soon as a rollout has answered).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Generator
from dataclasses import dataclass, field

from ponder.answers import extract_answer
from ponder.events import (
    BudgetUpdate,
    FinishReason,
    Sample,
    StrategyEvent,
    StrategyNote,
    TokenEvent,
    VoteUpdate,
)
from ponder.strategies.base import StrategyRun, StrategySpec, Task, require
from ponder.strategies.beam import STEP_BREAK
from ponder.strategies.chains import ChainConfig, ChainState, run_chains
from ponder.strategies.mcts_tree import Node, Tree
from ponder.strategies.multistep import answer_from, emit, holding, judge, make_result, sample_of
from ponder.strategies.verifiers import VERIFIERS, Verifier, make_verifier, tokens_per_call
from ponder.thinking import THINK_OPEN, split_thinking

CUT: frozenset[FinishReason] = frozenset({"budget", "time", "interrupted"})
"""Finish reasons of sequences cut from outside: their rollouts are not counted."""
_BOXED = re.compile(r"\\boxed\s*\{")


@dataclass
class MctsOptions:
    iterations: int = 12
    expand: int = 2
    c: float = 1.0
    rollouts: int = 1
    step_tokens: int = 128
    rollout_tokens: int = 384
    max_depth: int = 8
    verifier: str = "self"
    verifier_weight: float = 0.5
    top_logprobs: int = 10
    answer_tokens: int = 256
    answer_reserve: int = 64

    @property
    def max_chains(self) -> int:
        """An expansion samples `expand` children, each forked into `rollouts` sequences."""
        return self.expand * self.rollouts

    def validate(self) -> None:
        require(1 <= self.iterations <= 1024, "iterations must be between 1 and 1024")
        require(1 <= self.expand <= 16, "expand must be between 1 and 16")
        require(self.c >= 0, "c must not be negative")
        require(1 <= self.rollouts <= 16, "rollouts must be between 1 and 16")
        require(self.step_tokens >= 1, "step_tokens must be at least 1")
        require(self.rollout_tokens >= 1, "rollout_tokens must be at least 1")
        require(1 <= self.max_depth <= 256, "max_depth must be between 1 and 256")
        require(self.verifier in VERIFIERS,
                f"unknown verifier '{self.verifier}': choose from {', '.join(VERIFIERS)}")
        require(0 <= self.verifier_weight <= 1, "verifier_weight must be between 0 and 1")
        require(1 <= self.top_logprobs <= 100, "top_logprobs must be between 1 and 100")
        require(self.answer_tokens >= 1, "answer_tokens must be at least 1")
        require(self.answer_reserve >= 1, "answer_reserve must be at least 1")


def boxed_answer(text: str) -> str | None:
    """The answer of the last complete \\boxed{...} in `text` (None while it is open)."""
    matches = list(_BOXED.finditer(text))
    if not matches:
        return None
    depth = 1
    for ch in text[matches[-1].end():]:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0:
            return extract_answer(text[matches[-1].start():])
    return None


def step_end(text: str) -> int:
    """Where the first step of `text` ends: its first blank line after some content."""
    at = text.find(STEP_BREAK)
    while at >= 0 and not text[:at].replace(THINK_OPEN, "").strip():
        at = text.find(STEP_BREAK, at + 1)
    return at


@dataclass
class Child:
    """One sequence of an expansion: the step it writes, then its rollout."""

    node: Node | None = None
    rollout_from: int = 0
    """Its token count when its rollout began."""
    rollout_at: int = 0
    """Where in its text the rollout begins."""
    pruned: bool = False
    raw: str = ""


@dataclass
class Expansion:
    """One iteration's expansion of `leaf`: its new children by step text."""

    leaf: Node
    steps: dict[str, Node] = field(default_factory=dict)
    fresh: list[Node] = field(default_factory=list)


class Search:
    """One question's search: the tree, every chain's sample and state, the iterations."""

    def __init__(self, task: Task, opts: MctsOptions) -> None:
        self.task = task
        self.opts = opts
        self.verifier: Verifier = make_verifier(opts.verifier, opts.top_logprobs)
        self.tree = Tree(opts.c, opts.verifier_weight, opts.max_depth)
        self.samples: list[Sample] = []
        self.children: dict[int, Child] = {}
        self.next_chain = 0
        self.iterations = 0
        self.pruned = 0
        self.child_tokens: list[int] = []
        """Tokens each finished child took (its step and rollouts), to size expansions."""

    # ---- budget

    def held(self) -> int:
        """Tokens kept back during an expansion: verifier calls, and (until a rollout has
        answered) room for a final answer, at most a quarter of the budget."""
        answer, budget = 0, self.task.budget.tokens
        if budget is not None and self.tree.best() is None:
            answer = min(self.opts.answer_reserve, budget // 4)
        return self.opts.expand * tokens_per_call(self.verifier) + answer

    def width(self) -> int:
        """Children to expand now: `expand`, or fewer when the budget left cannot finish
        that many at the size finished children have had (a rollout cut by the budget
        counts for nothing, so the last expansions are narrowed instead)."""
        remaining = self.task.budget.remaining()
        if remaining is None or not self.child_tokens:
            return self.opts.expand
        each = sum(self.child_tokens) / len(self.child_tokens)
        return max(1, min(self.opts.expand, int((remaining - self.held()) // each)))

    def stopped(self) -> bool:
        remaining = self.task.budget.remaining()
        if remaining is not None and remaining <= self.held():
            return True
        return self.task.interrupted or self.task.budget.out_of_time()

    # ---- one iteration

    def iterate(self, leaf: Node) -> Generator[StrategyEvent, None, None]:
        """Expand `leaf`, roll out its new children, score them and back the rollouts up."""
        self.iterations += 1
        ex, first, width = Expansion(leaf), self.next_chain, self.width()
        sampling = self.task.sampling.with_(
            max_tokens=self.opts.step_tokens + self.opts.rollout_tokens, stop=())
        config = ChainConfig(force_answers=False, reuse=False, label=f"depth {leaf.depth + 1}")
        with holding(self.task.budget, self.held()):
            samples = yield from run_chains(
                self.task, width, config, sampling=sampling, first_chain=first,
                prefix=leaf.text, prior_tokens=leaf.tokens,
                on_token=lambda st, event: self._on_token(ex, st, event))
        self.next_chain = max([first + width] + [s.chain + 1 for s in samples])
        self.samples += samples
        for s in samples:
            self._settle(ex, s)
        if samples and not leaf.children and not any(s.finish_reason in CUT for s in samples):
            leaf.dead = True
        for node in ex.fresh:
            node.score = judge(self.task, self.verifier, self.task.question,
                               self._plain(node.text))
        for s in samples:
            self._back_up(s)
        self._measure(leaf, samples)
        yield from emit(self.task, VoteUpdate(dict(self.tree.answer_visits())),
                        StrategyNote(self.note()),
                        BudgetUpdate(self.task.budget.used, self.task.budget.tokens,
                                     self.task.budget.elapsed()))

    def _on_token(self, ex: Expansion, st: ChainState, event: TokenEvent
                  ) -> FinishReason | None:
        child = self.children.get(st.chain)
        if child is None:
            parent = self.children.get(st.forked_from) if st.forked_from is not None else None
            child = dataclasses.replace(parent) if parent is not None else Child()
            self.children[st.chain] = child
        child.raw = st.text
        if child.pruned:
            return None
        if child.node is None:
            return self._in_step(ex, st, child)
        return self._in_rollout(st, child, event.text)

    def _in_step(self, ex: Expansion, st: ChainState, child: Child) -> FinishReason | None:
        start = len(ex.leaf.text)
        new = st.text[start:]
        cut = step_end(new)
        if cut >= 0:
            step, child.rollout_at = new[:cut].rstrip() + STEP_BREAK, start + cut
        elif boxed_answer(new) is not None or st.tokens - ex.leaf.tokens >= self.opts.step_tokens:
            step, child.rollout_at = new, len(st.text)
        else:
            return None
        if not self._place(ex, st.chain, step, st.tokens, child):
            return "abort"
        if child.node is not None and child.node.terminal:
            return "stop"
        reason = self._in_rollout(st, child, st.text)
        if reason is None and self.opts.rollouts > 1:
            st.fork = self.opts.rollouts - 1
        return reason

    def _in_rollout(self, st: ChainState, child: Child, piece: str) -> FinishReason | None:
        if "}" in piece and boxed_answer(st.text[child.rollout_at:]) is not None:
            return "stop"
        if st.tokens - child.rollout_from >= self.opts.rollout_tokens:
            return "length"
        return None

    def _place(self, ex: Expansion, chain: int, step: str, tokens: int, child: Child,
               ended: bool = False) -> bool:
        """Make `step` a child of the leaf; False (pruned) when it repeats a sibling's step
        and the solution goes on. A repeated final step counts as a rollout of its twin."""
        key = " ".join(step.split())
        terminal = ended or boxed_answer(step) is not None
        twin = ex.steps.get(key)
        if twin is not None and not terminal:
            child.pruned = True
            self.pruned += 1
            return False
        if twin is None:
            twin = ex.steps[key] = self.tree.add(ex.leaf, ex.leaf.text + step, tokens, chain,
                                                 terminal)
            ex.fresh.append(twin)
        child.node, child.rollout_from = twin, tokens
        return True

    def _settle(self, ex: Expansion, s: Sample) -> None:
        """After the generation: a sequence that ended inside its step made a final node."""
        child = self.children.get(s.chain)
        if s.answer is None:
            s.answer = boxed_answer(s.thinking)
        if child is None or child.pruned or child.node is not None or s.finish_reason in CUT:
            return
        new = child.raw[len(ex.leaf.text):]
        if new.replace(THINK_OPEN, "").strip():
            self._place(ex, s.chain, new, s.tokens, child, ended=True)

    def _back_up(self, s: Sample) -> None:
        """Count a finished rollout (one cut from outside counts only if it answered)."""
        child = self.children.get(s.chain)
        if child is None or child.node is None or child.pruned:
            return
        if s.finish_reason not in CUT or s.answer is not None:
            s.score = child.node.score
            self.tree.record(child.node, s)

    def _measure(self, leaf: Node, samples: list[Sample]) -> None:
        """Record what each child that finished took: its tokens and its forks'."""
        spent: dict[int, int] = {}
        for s in samples:
            child = self.children.get(s.chain)
            if child is None or child.node is None or child.pruned or s.finish_reason in CUT:
                continue
            own = s.chain if child.node.terminal or child.node.chain is None else child.node.chain
            spent[own] = spent.get(own, 0) + s.tokens - leaf.tokens
        self.child_tokens += spent.values()

    def _plain(self, text: str) -> str:
        """A node as the verifier reads it: thinking and answer, tags removed."""
        thinking, answer = split_thinking(text, self.task.thinks_first)
        return f"{thinking}\n\n{answer}".strip()

    def note(self) -> str:
        """The live panel's line: the tree's size and the leading answers' visits."""
        stats = self.tree.stats()
        line = (f"iteration {self.iterations} · depth {stats['depth']} · {stats['nodes']} "
                f"nodes · {stats['rollouts']} rollouts")
        visits = list(self.tree.answer_visits().items())[:3]
        if visits:
            line += " · leading " + ", ".join(f"{a} ({v})" for a, v in visits)
        return line

    def stats(self) -> dict[str, object]:
        return {**self.tree.stats(), "iterations": self.iterations, "pruned": self.pruned}

    # ---- the answer

    def finish(self) -> Generator[StrategyEvent, None, Sample | None]:
        """The best rollout's sample; without an answered one, the best path's longest
        rollout (or the path's node itself) completed with an answer."""
        best = self.tree.best()
        if best is not None:
            return best.sample
        leaf = self.tree.best_leaf()
        text, chain, tokens = leaf.text, leaf.chain or 0, leaf.tokens
        mine = [s for s in self.samples if self._under(s.chain, leaf)]
        if mine:
            longest = max(mine, key=lambda s: (s.tokens, -s.chain))
            text, chain, tokens = self.children[longest.chain].raw, longest.chain, longest.tokens
        done = yield from answer_from(self.task, text, chain=chain, prior_tokens=tokens,
                                      max_tokens=self.opts.answer_tokens, greedy=True)
        if done:
            return done[0]
        return sample_of(self.task, chain, text, tokens, "budget") if text else None

    def _under(self, chain: int, node: Node) -> bool:
        child = self.children.get(chain)
        return child is not None and child.node is not None and node in child.node.path()


def run(task: Task, opts: MctsOptions) -> StrategyRun:
    search = Search(task, opts)
    for _ in range(opts.iterations):
        leaf = search.tree.select()
        if leaf is None or search.stopped():
            break
        yield from emit(task, StrategyNote(f"iteration {search.iterations + 1}: expanding "
                                           f"a node at depth {leaf.depth}"))
        yield from search.iterate(leaf)
    chosen = yield from search.finish()
    samples = sorted(search.samples, key=lambda s: s.chain)
    if chosen is not None and all(s is not chosen for s in samples):
        samples = [s for s in samples if s.chain != chosen.chain] + [chosen]
        samples.sort(key=lambda s: s.chain)
    votes = {k: round(v, 6) for k, v in search.tree.answer_values().items()}
    return make_result(task, chosen, samples, votes, verifier=opts.verifier, **search.stats())


SPEC = StrategySpec(
    "mcts",
    "Monte Carlo tree search over reasoning steps: UCT, forked rollouts, verifier and votes",
    MctsOptions,
    run,
)
