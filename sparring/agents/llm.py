"""The language-model agent: renders a prompt from a player's view, asks a backend,
and turns the answer into a legal action.

Two ways to choose (DESIGN.md): *free text*, where the model writes and the last
legal action named in its answer is extracted, and *scored choice*, where the
backend scores each legal action's answer text and the agent samples from the
softmax of those log-likelihoods (every move legal, the distribution exact).
"""

from __future__ import annotations

import functools
import math
import re
import time
from dataclasses import dataclass, replace
from typing import Literal

from sparring.agents.base import Decision
from sparring.backends.base import Backend, GenerationRequest, ScoreRequest
from sparring.errors import SparringError
from sparring.games.core import legal_action_names
from sparring.records import Choice, Sampling

SYSTEM_PROMPT = (
    "You are a skilled game player. You get the rules, what you can see, and the "
    "moves you may make. Choose the move most likely to win."
)


@dataclass(frozen=True)
class LLMConfig:
    mode: Literal["free", "scored"] = "free"
    """free: the model writes an answer that is parsed; scored: the model's
    likelihood of each legal answer is the policy."""
    reasoning: bool = False
    """Ask the model to think briefly before its answer line (free mode only)."""
    max_tokens: int = 0
    """Most tokens per answer; 0 means 24 without reasoning and 256 with it."""
    temperature: float = 1.0
    """Sampling temperature (0 is greedy); in scored mode it divides the scores."""
    top_p: float = 1.0
    system_prompt: str = SYSTEM_PROMPT
    playbook: str = ""
    """Strategy notes the model reads after the system prompt (an evolved playbook)."""

    def __post_init__(self):
        if self.mode not in ("free", "scored"):
            raise SparringError(f"mode '{self.mode}' unknown: use mode=free or mode=scored")
        if self.temperature < 0:
            raise SparringError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise SparringError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 0:
            raise SparringError(f"max_tokens must be >= 0, got {self.max_tokens}")
        if self.mode == "scored" and self.reasoning:
            raise SparringError("scored choice cannot reason first: use mode=free with reasoning=true")

    @property
    def answer_tokens(self) -> int:
        return self.max_tokens or (256 if self.reasoning else 24)


_ANSWER_MARK = re.compile(r"answer\s*:", re.IGNORECASE)
_MESSAGE_LINE = re.compile(r"^\s*message\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def extract_action(text: str, legal: dict[str, int]) -> tuple[int | None, str | None]:
    """The legal action an answer names, or None with the reason.

    Tolerant: case and spacing do not matter, names match as whole words, and the
    last mention wins. Text after the last "Answer:" is read first; if it names no
    legal action, the whole text is read.
    """
    if not text.strip():
        return None, "empty answer"
    marks = list(_ANSWER_MARK.finditer(text))
    segments = [text[marks[-1].end() :], text] if marks else [text]
    for segment in segments:
        best: tuple[int, int, int] | None = None  # (end, length, action)
        for name, action in legal.items():
            for match in _name_pattern(name).finditer(segment):
                key = (match.end(), match.end() - match.start(), action)
                if best is None or key[:2] > best[:2]:
                    best = key
        if best is not None:
            return best[2], None
    return None, f"it names no legal move (legal: {', '.join(legal)})"  # the answer is stored beside it


def rejection_kind(completion: str | None, action: int | None) -> str:
    """Why an answer was rejected, in two kinds a reader tells apart: "illegal" when
    it chose a move (an action the rules refused, or an "Answer:" line naming
    something that is not a legal move here) and "unparsable" when it chose none
    (empty, or no "Answer:" line and no legal move named)."""
    if action is not None:
        return "illegal"
    marks = list(_ANSWER_MARK.finditer(completion or ""))
    return "illegal" if marks and completion[marks[-1].end():].strip() else "unparsable"


@functools.lru_cache(maxsize=None)
def _name_pattern(name: str) -> re.Pattern:
    return re.compile(r"(?<![\w])" + r"\s+".join(re.escape(w) for w in name.split()) + r"(?![\w])", re.IGNORECASE)


def extract_message(text: str) -> str | None:
    """A `Message: ...` line, for games where moves carry messages."""
    found = _MESSAGE_LINE.findall(text)
    return found[-1][:500] if found else None


def retry_feedback(reason: str) -> str:
    """What the model is told after a rejected answer, before it tries again."""
    return f"That answer was rejected: {reason}. Try again."


class LLMAgent:
    wants_batches = True  # the arena gathers every live match's decision into one call

    def __init__(self, backend: Backend, config: LLMConfig = LLMConfig(), name: str | None = None):
        self.backend = backend
        self.config = config
        self.name = name or backend.name
        self.sampling = Sampling(mode=config.mode, temperature=config.temperature, top_p=config.top_p)

    def messages(self, decision: Decision) -> tuple[tuple[str, str], ...]:
        state = decision.state
        spec = state.spec
        # The view already states the rules, the player's seat and the answer format.
        parts = [state.view(decision.player)]
        if spec.messages and self.config.mode == "free":
            parts.append("You may add one line 'Message: <text>' for the other player before your answer.")
        if self.config.reasoning:
            parts.append("Think step by step in a few sentences, then end with your answer line.")
        system = "\n\n".join(filter(None, (self.config.system_prompt, self.config.playbook)))
        messages = [("system", system), ("user", "\n\n".join(parts))]
        for answer, reason in decision.rejected:
            # The rejected answer as the model's own turn, then the correction: the way
            # chat models are trained to take one (and a backend that keeps the keys and
            # values of prompt and answer runs only the correction).
            messages += [("assistant", answer), ("user", retry_feedback(reason))]
        return tuple(messages)

    def act(self, decisions: list[Decision]) -> list[Choice]:
        if not decisions:
            return []
        start = time.perf_counter()
        choices = self._scored(decisions) if self.config.mode == "scored" else self._free(decisions)
        # What was measured: the call's time, which its decisions share (not a per-decision latency).
        elapsed = time.perf_counter() - start
        return [replace(choice, batch_s=elapsed, batch_size=len(decisions)) for choice in choices]

    def _free(self, decisions: list[Decision]) -> list[Choice]:
        requests = [
            GenerationRequest(
                messages=self.messages(d),
                max_new_tokens=self.config.answer_tokens,
                temperature=self.config.temperature,
                top_p=self.config.top_p,
                seed=d.seed,
            )
            for d in decisions
        ]
        completions = self.backend.generate(requests)
        choices = []
        for decision, request, completion in zip(decisions, requests, completions):
            if completion.error:
                action, reason = None, f"backend error: {completion.error}"
            else:
                action, reason = extract_action(completion.text, legal_action_names(decision.state))
            message = extract_message(completion.text) if decision.state.spec.messages else None
            choices.append(
                Choice(
                    action=action, reason=reason, message=message,
                    prompt=_render(request.messages), completion=completion.text,
                    prompt_token_ids=tuple(completion.prompt_token_ids),
                    token_ids=tuple(completion.token_ids), logprobs=tuple(completion.logprobs),
                    sampling=self.sampling, policy_version=completion.weights_version,
                    backend_error=completion.error, usage=completion.usage,
                )
            )
        return choices

    def _scored(self, decisions: list[Decision]) -> list[Choice]:
        requests, legal = [], []
        for d in decisions:
            names = legal_action_names(d.state)
            legal.append(names)
            answer = d.state.spec.answer_format
            options = tuple(answer_text(answer, name) for name in names)
            requests.append(ScoreRequest(messages=self.messages(d), options=options))
        choices = []
        for decision, request, names, scored in zip(decisions, requests, legal, self.backend.score(requests)):
            option_scores = [option.total for option in scored]
            temperature = self.config.temperature
            actions = list(names.values())
            if temperature == 0:
                best = max(range(len(actions)), key=lambda i: option_scores[i])
                log_policy = [0.0 if i == best else -math.inf for i in range(len(actions))]
            else:
                scaled = [s / temperature for s in option_scores]
                top = max(scaled)
                norm = top + math.log(sum(math.exp(s - top) for s in scaled))
                log_policy = [s - norm for s in scaled]
            index = _sample_index(log_policy, decision.rng)
            chosen = scored[index]  # its tokens exactly as scored, for the policy gradient
            choices.append(
                Choice(
                    action=actions[index], prompt=_render(request.messages),
                    completion=request.options[index],
                    prompt_token_ids=tuple(chosen.prompt_token_ids),
                    token_ids=tuple(chosen.token_ids),
                    logprobs=tuple(chosen.logprobs),  # temperature 1, as scored
                    action_logprobs=dict(zip(actions, log_policy)),
                    option_token_ids={a: tuple(option.token_ids) for a, option in zip(actions, scored)},
                    sampling=self.sampling, policy_version=chosen.weights_version,
                )
            )
        return choices

    def close(self) -> None:
        self.backend.close()


def answer_text(answer_format: str, name: str) -> str:
    """The answer line for one action: the format with its placeholder filled,
    e.g. 'Answer: <cell>' -> 'Answer: 5'."""
    return re.sub(r"<[^>]*>", name, answer_format, count=1)


def _sample_index(log_policy: list[float], rng) -> int:
    u, total = rng.random(), 0.0
    for i, lp in enumerate(log_policy):
        total += math.exp(lp)
        if u < total:
            return i
    return max(range(len(log_policy)), key=lambda i: log_policy[i])


def _render(messages: tuple[tuple[str, str], ...]) -> str:
    return "\n\n".join(f"[{role}]\n{content}" for role, content in messages)
