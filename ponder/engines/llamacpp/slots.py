"""Sequence slots and prompt holders in one context's KV cache, and prompt-prefix reuse.

The context holds `n_slots` *slots* (sequence ids ``0..n_slots-1``), each the KV of one
sequence being decoded, and ``n_slots + 1`` *prompt holders* after them: one per open
generation, plus one that keeps the last prompt for the next request. A request evaluates
its prompt once into its holder (all but the last token), reusing the longest prefix any
holder has; every sequence that takes a slot copies the holder's KV (no recomputation: with
a unified KV cache the cells are shared).

Only the scheduler's thread calls these methods (see :mod:`.scheduler`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from ponder.engines.llamacpp.capi import Context


class SeqState(enum.Enum):
    """Where a sequence stands with the slots, as in llama.cpp's server loop."""

    WAITING = "waiting"  # no slot yet (more sequences than slots, a fork, another's turn)
    RUNNING = "running"  # holds a slot; its pending tokens are decoded in the next step
    RETIRED = "retired"  # finished; keeps its slot until the next step, for a fork child
    DONE = "done"  # finished, no slot


@dataclass(frozen=True)
class Prefill:
    """What evaluating one prompt into its holder cost."""

    reused: int  # prompt tokens whose KV was already in a holder
    evaluated: int  # prompt tokens decoded


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class KVSlots:
    """The slots and prompt holders of `ctx`, and which are free."""

    def __init__(self, ctx: Context, n_slots: int) -> None:
        self.ctx = ctx
        self.n_slots = n_slots
        self.free_slots: list[int] = list(range(n_slots))
        # Each holder remembers the tokens in its KV.
        self.holder_tokens: dict[int, list[int]] = {
            h: [] for h in range(n_slots, self.sequences(n_slots))
        }
        self.free_holders: list[int] = list(self.holder_tokens)

    @staticmethod
    def sequences(n_slots: int) -> int:
        """Sequence ids the context needs for `n_slots` slots and their holders."""
        return 2 * n_slots + 1

    # ---- slots

    def take_slot(self) -> int:
        return self.free_slots.pop(0)

    def give_slot(self, slot: int) -> None:
        self.ctx.remove_seq(slot)
        self.free_slots.append(slot)
        self.free_slots.sort()

    def copy(self, src: int, dst: int, end: int = -1) -> None:
        """Give slot `dst` the KV of slot or holder `src` below position `end` (-1: all)."""
        self.ctx.copy_seq(src, dst, end)

    def truncate(self, slot: int, start: int) -> None:
        """Drop the KV of `slot` from position `start` on."""
        self.ctx.remove_seq(slot, start)

    # ---- prompt holders

    def pick_holder(self, target: list[int]) -> int | None:
        """The free holder whose kept prompt shares the longest prefix with `target`."""
        if not self.free_holders:
            return None
        best = max(self.free_holders,
                   key=lambda h: common_prefix(self.holder_tokens[h], target))
        self.free_holders.remove(best)
        return best

    def give_holder(self, holder: int) -> None:
        """Return `holder`, keeping its prompt; other free holders are cleared, so at most
        one kept prompt occupies the KV cache beyond the open generations."""
        self.clear_free_holders()
        self.free_holders.append(holder)

    def clear_free_holders(self) -> None:
        """Forget the prompts the free holders keep."""
        for h in self.free_holders:
            if self.holder_tokens[h]:
                self.ctx.remove_seq(h)
            self.holder_tokens[h].clear()

    def prefill(self, tokens: list[int], holder: int, n_batch: int) -> Prefill:
        """Evaluate `tokens[:-1]` into `holder`, reusing the longest prefix any holder has
        (its own from an earlier request, or another one's, e.g. a shared system prompt)."""
        target = tokens[:-1]
        own = self.holder_tokens[holder]
        common = common_prefix(own, target)
        source, best = holder, common
        for other, kept in self.holder_tokens.items():
            shared = common_prefix(kept, target) if other != holder else 0
            if shared > best:
                source, best = other, shared
        if source != holder:
            self.ctx.remove_seq(holder)
            self.ctx.copy_seq(source, holder, best)
            own[:] = target[:best]
            common = best
        else:
            self.ctx.remove_seq(holder, common)
            del own[common:]
        batch = self.ctx.batch
        for start in range(common, len(target), n_batch):
            chunk = target[start : start + n_batch]
            batch.put(0, chunk, start, holder, last_logits=False)
            self.ctx.decode(len(chunk))
            own.extend(chunk)
        return Prefill(reused=common, evaluated=len(target) - common)
