"""`ponder chat`: a conversation in the terminal, each turn thought through and logged.

Lines are read with the standard library's readline (line editing, and a history kept
next to the log) when stdin is a terminal; piped stdin is read line by line, so that a
conversation can be scripted. Answers go to stdout, the thinking digest to stderr.
Ctrl-C stops the turn being thought (what was produced is kept), Ctrl-D or /exit leaves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from ponder.chat import Conversation
from ponder.cli import _options as opt
from ponder.cli._engine import load, sampling_for
from ponder.cli._runlog import NoCacheOpt, NoLogOpt, answer_from_log, open_log
from ponder.cli._summary import add_model_summary, wants_model_summary
from ponder.cli.ask import ThinkingOpt, _thinking_mode
from ponder.cli.render import Renderer, ThinkingMode, print_answer
from ponder.engines import EngineOptions, Loaded
from ponder.errors import PonderError
from ponder.log.db import log_path
from ponder.log.keys import Request
from ponder.log.session import RunLog
from ponder.runner import Plan, drive, make_plan, parse_overrides, result_record, run_plan

CLOCK = time.monotonic
HELP = ("/effort low|medium|high|auto  how hard to think from now on\n"
        "/model ID                     switch models (the conversation goes on)\n"
        "/clear                        start a new conversation\n"
        "/exit                         leave (or Ctrl-D)")
EXIT_WORDS = ("/exit", "/quit", "/bye")


@dataclass
class Chat:
    """What a chat session holds between turns."""

    err: Console
    log: RunLog
    options: EngineOptions
    engine: str | None
    plan: Plan
    mode: ThinkingMode
    seed: int
    temperature: float | None
    budget: int | None
    seconds: float | None
    source: opt.SummarySource = "extractive"
    loaded: Loaded | None = None
    conversation: Conversation = field(default_factory=Conversation)

    def model(self) -> Loaded:
        if self.loaded is None:
            self.loaded = load(self.err, self.engine, self.options)
        return self.loaded

    def turn(self, question: str) -> None:
        """Think about one question in the light of the earlier turns; log it."""
        loaded = self.model()
        single = self.plan.spec.single_chain
        sampling = sampling_for(loaded, self.seed, self.temperature, single_chain=single)
        task = self.conversation.task(question, loaded, sampling, budget=self.budget,
                                      seconds=self.seconds, clock=CLOCK, single_chain=single)
        request = Request(self.plan, self.seed, self.temperature, self.budget, self.seconds,
                          self.options.n_ctx, self.conversation.history())
        entry = self.log.begin(task, loaded, request, conversation=self.conversation.id,
                               turn=len(self.conversation.turns) + 1)
        if entry.hit is not None:
            answer_from_log(entry, question, self.plan, self.err, self.mode, json_out=False,
                            quiet=False)
            result = entry.hit.result()
        else:
            started = CLOCK()
            with Renderer(self.err, self.mode, clock=CLOCK) as renderer:
                result = drive(run_plan(task, self.plan), renderer.handle)
            if wants_model_summary(self.source, shown=self.mode == "summary", json_out=False):
                result = add_model_summary(self.err, task, result)
            entry.finish(result_record(question, result, loaded, self.plan, CLOCK() - started),
                         result)
            renderer.summary(result)
            print_answer(Console(), result)
        self.conversation.add(question, result.text.strip() or (result.answer or ""))
        if result.interrupted:
            say(self.err, "ponder: interrupted; the answer above is what was produced so far")

    def command(self, line: str) -> bool:
        """Carry out a /command; False when the chat is to end."""
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        if name in EXIT_WORDS:
            return False
        if name == "/effort" and arg:
            self.plan = make_plan(arg, None)
            say(self.err, f"ponder: effort {arg} ({self.plan.spec.name})")
        elif name == "/model" and arg:
            options = dataclasses.replace(self.options, model=arg)
            self.loaded = load(self.err, self.engine, options)
            self.options = options
            say(self.err, f"ponder: now talking to {self.loaded.model_id}")
        elif name == "/clear":
            self.conversation = Conversation()
            say(self.err, "ponder: a new conversation")
        elif name in ("/help", "/?"):
            say(self.err, HELP)
        else:
            say(self.err, f"ponder: unknown command {line!r} (see /help)")
        return True


def chat(
    model: opt.ModelOpt = None,
    effort: opt.EffortOpt = None,
    strategy: opt.StrategyOpt = None,
    option: opt.OptionOpt = None,
    budget: opt.BudgetOpt = None,
    time_limit: opt.TimeOpt = None,
    seed: opt.SeedOpt = 0,
    temperature: opt.TemperatureOpt = None,
    thinking: ThinkingOpt = "summary",
    summary: opt.SummaryOpt = "extractive",
    engine: opt.EngineOpt = None,
    base_url: opt.BaseUrlOpt = None,
    api_key_env: opt.ApiKeyEnvOpt = None,
    gpu_layers: opt.GpuLayersOpt = None,
    ctx: opt.CtxOpt = None,
    threads: opt.ThreadsOpt = None,
    optimize: opt.OptimizeOpt = True,
    no_log: NoLogOpt = False,
    no_cache: NoCacheOpt = False,
) -> None:
    """Talk with a model; every turn is thought through (same effort flags as ask) and logged."""
    err = Console(stderr=True)
    session = Chat(err, open_log("chat", err, no_log, no_cache),
                   EngineOptions(model, gpu_layers, ctx, threads, base_url=base_url,
                                 api_key_env=api_key_env, optimize=optimize),
                   engine, make_plan(effort, strategy, parse_overrides(option or [])),
                   _thinking_mode(thinking), seed, temperature, budget,
                   opt.parse_duration(time_limit), opt.parse_summary(summary))
    loaded = session.model()
    interactive = sys.stdin.isatty()
    if interactive:
        say(err, f"ponder chat · {loaded.model_id} · {session.plan.effort or 'default'} effort"
                 " · /help for commands, /exit to leave")
    with line_reader(interactive, history=None if no_log else log_path().with_name(
            "chat_history")) as read:
        while (line := read("> ")) is not None:
            text = line.strip()
            if not text:
                continue
            try:
                if text.startswith("/"):
                    if not session.command(text):
                        break
                else:
                    session.turn(text)
            except PonderError as exc:  # a bad /effort or /model: say so and go on
                say(err, f"ponder: error: {exc}", "red")


Reader = Callable[[str], "str | None"]


@contextlib.contextmanager
def line_reader(interactive: bool, history: Path | None) -> Iterator[Reader]:
    """A function reading the next line (None at the end), with readline when interactive."""
    if not interactive:
        yield _piped_line
        return
    import readline

    if history is not None:
        with contextlib.suppress(OSError):
            readline.read_history_file(history)
    readline.set_history_length(1000)
    try:
        yield _typed_line
    finally:
        if history is not None:
            with contextlib.suppress(OSError):
                history.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(history)


def _piped_line(_prompt: str) -> str | None:
    line = sys.stdin.readline()
    return line if line else None


def _typed_line(prompt: str) -> str | None:
    while True:
        try:
            return input(prompt)
        except EOFError:
            print(file=sys.stderr)
            return None
        except KeyboardInterrupt:  # Ctrl-C at the prompt: a fresh line, as in a shell
            print(file=sys.stderr)


def say(console: Console, text: str, style: str | None = None) -> None:
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)
