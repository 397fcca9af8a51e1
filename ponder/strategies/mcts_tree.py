"""The search tree of `mcts`: nodes, rollouts, values, UCT selection and the final pick.

A node is a partial solution ending at a step boundary. A rollout (a continuation from a
node to a final answer) is a visit of that node and of all its ancestors. Its reward blends
two signals, with `w` the verifier weight:

    reward = (1 - w) * agreement + w * (the verifier's score of the node it started from)

where agreement is the share of all rollouts so far whose answer is equivalent to this
one's (0 without an answer): self-consistency as the value signal. Agreement changes as
rollouts arrive, so values are recomputed from the rollouts rather than accumulated. A
node's value is the mean reward of the rollouts under it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ponder.events import Sample
from ponder.strategies.aggregate import Ballot, tally
from ponder.strategies.verifiers import NEUTRAL


@dataclass(eq=False)
class Node:
    """A partial solution: its text after the prompt and the tokens sampled to write it."""

    id: int
    parent: Node | None
    text: str
    tokens: int
    depth: int
    chain: int | None = None
    terminal: bool = False
    """The solution ends in this node's step (a final answer, or the model stopped)."""
    dead: bool = False
    """An expansion of this node produced no new step."""
    score: float | None = None
    children: list[Node] = field(default_factory=list)
    visits: list[Rollout] = field(default_factory=list)

    def path(self) -> list[Node]:
        """This node and its ancestors, root last."""
        out: list[Node] = []
        node: Node | None = self
        while node is not None:
            out.append(node)
            node = node.parent
        return out


@dataclass(eq=False)
class Rollout:
    """A finished rollout from `node`; `key` is its answer's group in the tally."""

    node: Node
    sample: Sample
    key: str | None = None


class Tree:
    """The tree with its rollouts; `c` is UCT's exploration constant, `weight` the verifier's
    share of a reward, `max_depth` the deepest a node may be and still be expanded."""

    def __init__(self, c: float = 1.0, weight: float = 0.5, max_depth: int = 8) -> None:
        self.c = c
        self.weight = weight
        self.max_depth = max_depth
        self.root = Node(0, None, "", 0, 0)
        self.nodes = [self.root]
        self.rollouts: list[Rollout] = []
        self._shares: dict[str, float] = {}

    # ---- growing

    def add(self, parent: Node, text: str, tokens: int, chain: int | None = None,
            terminal: bool = False) -> Node:
        node = Node(len(self.nodes), parent, text, tokens, parent.depth + 1, chain, terminal)
        parent.children.append(node)
        self.nodes.append(node)
        return node

    def record(self, node: Node, sample: Sample) -> Rollout:
        """Backpropagation: the rollout visits `node` and every ancestor."""
        rollout = Rollout(node, sample)
        self.rollouts.append(rollout)
        for n in node.path():
            n.visits.append(rollout)
        self._retally()
        return rollout

    def _retally(self) -> None:
        ballots = [Ballot(i, r.sample.answer) for i, r in enumerate(self.rollouts)
                   if r.sample.answer is not None]
        total = len(self.rollouts)
        self._shares = {}
        for group in tally(ballots):
            self._shares[group.key] = group.count / total
            for b in group.ballots:
                self.rollouts[b.chain].key = group.key

    # ---- values

    def reward(self, r: Rollout) -> float:
        agreement = self._shares.get(r.key, 0.0) if r.key is not None else 0.0
        score = NEUTRAL if r.node.score is None else r.node.score
        return (1 - self.weight) * agreement + self.weight * score

    def value(self, node: Node) -> float | None:
        """The mean reward of the rollouts under `node` (None before its first visit)."""
        if not node.visits:
            return None
        return sum(self.reward(r) for r in node.visits) / len(node.visits)

    def uct(self, node: Node) -> float:
        """value + c * sqrt(ln N(parent) / N(node)); unvisited nodes come first."""
        value = self.value(node)
        if value is None:
            return math.inf
        parent = node.parent.visits if node.parent is not None else node.visits
        explore = math.sqrt(math.log(max(1, len(parent))) / len(node.visits))
        return value + self.c * explore

    # ---- selection

    def expandable(self, node: Node) -> bool:
        """Whether `node`'s subtree still has a leaf that may be expanded."""
        if node.children:
            return any(self.expandable(ch) for ch in node.children)
        return not (node.terminal or node.dead or node.depth >= self.max_depth)

    def select(self) -> Node | None:
        """The leaf to expand: the highest-UCT child at each level (ties, such as unvisited
        children: the higher verifier score, then the older node), skipping subtrees with
        nothing left to expand; None when the whole tree is done."""
        if not self.expandable(self.root):
            return None
        node = self.root
        while node.children:
            options = [ch for ch in node.children if self.expandable(ch)]
            node = max(options, key=lambda ch: (_fuzz(self.uct(ch)), _prior(ch), -ch.id))
        return node

    # ---- the answer

    def answer_visits(self) -> dict[str, int]:
        """Answer -> how many rollouts reached it (the live panel's tally)."""
        counts = Counter(r.key for r in self.rollouts if r.key is not None)
        return dict(counts.most_common())

    def answer_values(self) -> dict[str, float]:
        """Answer -> visit-weighted value: the sum, over the rollouts that reached it, of the
        value of the node each started from. Highest first."""
        out: dict[str, float] = {}
        for r in self.rollouts:
            if r.key is not None:
                out[r.key] = out.get(r.key, 0.0) + (self.value(r.node) or 0.0)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def best(self) -> Rollout | None:
        """The rollout speaking for the answer with the highest visit-weighted value: the one
        from the most valuable node (ties: the earliest chain)."""
        values = self.answer_values()
        if not values:
            return None
        visits = self.answer_visits()
        key = min(values, key=lambda k: (-_fuzz(values[k]), -visits[k], self._first(k)))
        return min((r for r in self.rollouts if r.key == key),
                   key=lambda r: (-_fuzz(self.value(r.node) or 0.0), r.sample.chain))

    def _first(self, key: str) -> int:
        return min(r.sample.chain for r in self.rollouts if r.key == key)

    def best_leaf(self) -> Node:
        """The end of the principal path: at each level the most valuable child (a child no
        rollout has visited yet ranks by its verifier score)."""
        node = self.root
        while True:
            judged = [(v, ch) for ch in node.children
                      if (v := self.value(ch) if ch.visits else ch.score) is not None]
            if not judged:
                return node
            node = max(judged, key=lambda vc: (_fuzz(vc[0]), -vc[1].id))[1]

    def stats(self) -> dict[str, Any]:
        return {
            "nodes": len(self.nodes) - 1,
            "depth": max(n.depth for n in self.nodes),
            "rollouts": len(self.rollouts),
        }


def _fuzz(x: float) -> float:
    """`x` rounded for comparisons, so that ties are ties despite floating-point noise."""
    return x if math.isinf(x) else round(x, 9)


def _prior(node: Node) -> float:
    return NEUTRAL if node.score is None else node.score
