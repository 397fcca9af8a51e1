"""Family defaults: sampling per family, and the one-chain prompt and turn start."""

from __future__ import annotations

from dataclasses import replace

from ponder.cli._engine import sampling_for
from ponder.engines import Loaded
from ponder.engines.base import Sampling
from ponder.engines.scripted import Script, ScriptedEngine
from ponder.registry import FamilyDefaults, load_registry
from ponder.runner import drive, make_plan, make_task, run_plan
from ponder.thinking import PROMPTED_SYSTEM

FAMILY = FamilyDefaults("fam", temperature=0.7, top_p=0.8, top_k=20, min_p=0.0,
                        single_temperature=0.0, assistant_prefix="<think>\n",
                        single_system="Think step by step.", single_prefill=False)


def loaded() -> Loaded:
    return Loaded(ScriptedEngine(), "prompted", "m", FAMILY)


def test_chains_that_vote_get_the_tag_prompt_and_the_prefilled_turn() -> None:
    task = make_task("What is 2 + 2?", loaded(), Sampling())
    assert PROMPTED_SYSTEM in task.prompt
    assert task.prompt.endswith("<|assistant|>\n<think>\n") and task.thinks_first


def test_one_chain_gets_the_family_prompt_without_prefill() -> None:
    task = make_task("What is 2 + 2?", loaded(), Sampling(), single_chain=True)
    assert "Think step by step." in task.prompt and PROMPTED_SYSTEM not in task.prompt
    assert task.prompt.endswith("<|assistant|>\n")


def test_sampling_follows_the_family() -> None:
    many = sampling_for(loaded(), 3, None)
    assert (many.temperature, many.top_p, many.top_k, many.min_p, many.seed) == (
        0.7, 0.8, 20, 0.0, 3)
    assert sampling_for(loaded(), 3, None, single_chain=True).temperature == 0.0
    assert sampling_for(loaded(), 3, 1.2, single_chain=True).temperature == 1.2


def test_registry_families_follow_the_model_cards() -> None:
    registry = load_registry()
    r1 = registry.family("deepseek-r1-distill")
    assert (r1.temperature, r1.top_p, r1.assistant_prefix) == (0.6, 0.95, "<think>\n")
    assert r1.single_temperature > 0 and r1.single_prefill      # the cards advise no greedy
    coder = registry.family("qwen2.5-coder")
    assert coder.single_temperature == 0.0 and not coder.single_prefill
    assert registry.family("unknown").temperature == FamilyDefaults().temperature


PLAIN = replace(FAMILY, plain_chains=True)


def test_plain_chains_give_every_chain_the_family_prompt_and_open_reasoning() -> None:
    task = make_task("What is 2 + 2?", Loaded(ScriptedEngine(), "prompted", "m", PLAIN),
                     Sampling())
    assert "Think step by step." in task.prompt and PROMPTED_SYSTEM not in task.prompt
    assert task.prompt.endswith("<|assistant|>\n")
    assert task.implicit_thinking and task.thinks_first
    tagged = make_task("What is 2 + 2?", loaded(), Sampling())
    assert not tagged.implicit_thinking  # the prefilled tag marks its thinking itself


def test_native_models_never_reason_implicitly() -> None:
    task = make_task("What is 2 + 2?", Loaded(ScriptedEngine(), "native", "m", PLAIN),
                     Sampling())
    assert not task.implicit_thinking


OPEN = ("First, 2 apples plus 2 apples.\n\nThat makes 4 apples in all.\n\n"
        "So the final answer is \\boxed{4}.")


def test_open_reasoning_is_thinking_and_its_conclusion_the_answer() -> None:
    engine = ScriptedEngine([Script(OPEN)] * 3)
    task = make_task("What is 2 + 2?", Loaded(engine, "prompted", "m", PLAIN), Sampling())
    result = drive(run_plan(task, make_plan(None, "vote", {"n": "3"})), lambda e: None)
    assert result.answer == "4"
    sample = result.samples[0]
    assert sample.text == "So the final answer is \\boxed{4}."
    assert sample.thinking == OPEN  # as streamed: the conclusion was thinking until the end
    assert sample.thinking_tokens > 0


def test_registry_asks_qwen_coder_plainly_for_one_chain_only() -> None:
    coder = load_registry().family("qwen2.5-coder")
    assert coder.single_system and not coder.single_prefill and not coder.plain_chains
    task = make_task("What is 2 + 2?", Loaded(ScriptedEngine(), "prompted", "m", coder),
                     Sampling(), single_chain=True)
    assert task.implicit_thinking and task.thinks_first
