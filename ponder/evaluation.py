"""Scoring a run: accuracy with a Wilson interval, token and time costs (data only; the
CLI draws the tables, see :mod:`ponder.cli.tables`).

Definitions (per configuration, over the latest record of each problem):

- interrupted records are left out of every statistic (the problem did not finish);
- *scored* problems are those with a reference answer, run ("ok") or not ("error": an error
  counts as a wrong answer, since the configuration produced none);
- accuracy = correct / scored, with the Wilson score interval at 95%;
- mean tokens and mean seconds are over the problems that ran ("ok");
- tokens per correct answer = all tokens generated on scored problems / correct answers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a proportion `successes`/`n` (n > 0)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes}/{n}")
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def sign_test(only_a: int, only_b: int) -> float:
    """Two-sided exact sign test on paired outcomes: the chance, if neither side were better,
    of a split at least as uneven as `only_a` problems right only with A against `only_b`
    right only with B (problems both got right or both missed say nothing). 1.0 with none."""
    if only_a < 0 or only_b < 0:
        raise ValueError(f"need counts >= 0, got {only_a} and {only_b}")
    n = only_a + only_b
    tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1)) / (1 << n)
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class Summary:
    """The statistics of one configuration's records."""

    label: str
    problems: int = 0
    ran: int = 0
    errors: int = 0
    interrupted: int = 0
    scored: int = 0
    correct: int = 0
    tokens: int = 0
    scored_tokens: int = 0
    seconds: float = 0.0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.scored if self.scored else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.correct, self.scored) if self.scored else None

    @property
    def mean_tokens(self) -> float | None:
        return self.tokens / self.ran if self.ran else None

    @property
    def mean_seconds(self) -> float | None:
        return self.seconds / self.ran if self.ran else None

    @property
    def tokens_per_correct(self) -> float | None:
        return self.scored_tokens / self.correct if self.correct else None

    def to_json(self) -> dict[str, Any]:
        ci = self.interval
        return {
            "config": self.label, "problems": self.problems, "ran": self.ran,
            "errors": self.errors, "interrupted": self.interrupted, "scored": self.scored,
            "correct": self.correct, "accuracy": self.accuracy,
            "ci95": list(ci) if ci else None, "tokens": self.tokens,
            "mean_tokens": self.mean_tokens, "mean_seconds": self.mean_seconds,
            "tokens_per_correct": self.tokens_per_correct,
        }


def summarize(records: Iterable[Mapping[str, Any]], label: str = "") -> Summary:
    """Fold records (one per problem) into a Summary; see the module docstring."""
    counts = {"problems": 0, "ran": 0, "errors": 0, "interrupted": 0, "scored": 0,
              "correct": 0, "tokens": 0, "scored_tokens": 0}
    seconds = 0.0
    for r in records:
        status = r.get("status", "ok")
        counts["problems"] += 1
        if status == "interrupted":
            counts["interrupted"] += 1
            continue
        tokens = _int(r.get("tokens"))
        if status == "error":
            counts["errors"] += 1
        else:
            counts["ran"] += 1
            counts["tokens"] += tokens
            seconds += _float(r.get("seconds"))
        if r.get("reference") is not None:
            counts["scored"] += 1
            counts["scored_tokens"] += tokens
            counts["correct"] += r.get("correct") is True
    return Summary(label, seconds=seconds, **counts)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _float(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def latest(records: Iterable[Mapping[str, Any]], key: str = "config") -> list[Mapping[str, Any]]:
    """One record per (`key` value, id), the last one written winning; order kept."""
    by_key: dict[tuple[Any, Any], Mapping[str, Any]] = {}
    for r in records:
        by_key[(r.get(key), r.get("id"))] = r
    return list(by_key.values())


def by_config(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Records grouped by their `config` label (falling back to effort/strategy)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in latest(records):
        groups.setdefault(config_label(r), []).append(r)
    return groups


def config_label(record: Mapping[str, Any]) -> str:
    label = record.get("config")
    if isinstance(label, str) and label:
        return label
    parts = [str(record[k]) for k in ("effort", "strategy") if record.get(k)]
    return "/".join(parts) or "default"


def summarize_all(records: Iterable[Mapping[str, Any]]) -> list[Summary]:
    return [summarize(rs, label) for label, rs in by_config(records).items()]
