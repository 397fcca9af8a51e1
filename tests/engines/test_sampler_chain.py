"""The llama.cpp sampler chain ponder builds for a Sampling (no model needed)."""

from __future__ import annotations

import pytest

from ponder.engines.base import Sampling

llama_cpp = pytest.importorskip("llama_cpp")

from ponder.engines.llamacpp.capi import NUCLEUS_CAP, free_sampler, make_sampler  # noqa: E402


def names(sampling: Sampling) -> list[str]:
    chain = make_sampler(sampling, 1)
    try:
        return [llama_cpp.llama_sampler_name(llama_cpp.llama_sampler_chain_get(chain, i)).decode()
                for i in range(llama_cpp.llama_sampler_chain_n(chain))]
    finally:
        free_sampler(chain)


def test_top_p_without_top_k_gets_the_nucleus_cap_in_front() -> None:
    """Top-p alone sorts the whole vocabulary at every token (benchmarks/sampler.py)."""
    assert names(Sampling(temperature=0.6, top_k=0, top_p=0.95, min_p=0.0)) == [
        "top-k", "top-p", "temp", "dist"]
    assert NUCLEUS_CAP >= 1000


def test_the_family_top_k_is_kept_and_nothing_is_added_without_top_p() -> None:
    assert names(Sampling(temperature=0.7, top_k=20, top_p=0.8, min_p=0.0)) == [
        "top-k", "top-p", "temp", "dist"]
    assert names(Sampling(temperature=0.7, top_k=0, top_p=1.0, min_p=0.05)) == [
        "min-p", "temp", "dist"]
    assert names(Sampling(temperature=0.0)) == ["greedy"]
