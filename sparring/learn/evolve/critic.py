"""The critic and the reviser: a language model turns a generation's games into
feedback in words, and feedback into the next playbook.

The critic reads a sample of the games with their outcomes and, in games that hide
information, what each player held, revealed at the end; it says what lost, what
won, and gives at most k concrete suggestions (in-context learning from AI
feedback: Fu et al. 2023, arXiv 2305.10142). The reviser rewrites the playbook from
the feedback (`playbook.parse_playbook` keeps what holds). Both prompts are text
files with {placeholders}: the shipped ones in prompts/, or a user's own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from sparring.agents.base import Agent
from sparring.agents.llm import LLMAgent
from sparring.backends.base import GenerationRequest
from sparring.display import visible
from sparring.errors import SparringError
from sparring.games.core import Game, State
from sparring.records import MatchResult

PROMPTS = Path(__file__).parent / "prompts"
CRITIC_FIELDS = ("game", "player", "playbook", "transcripts", "max_suggestions")
REVISER_FIELDS = ("game", "max_rules", "rule_format", "playbook", "feedback")
MAX_PROMPT_BYTES = 64_000  # a prompt file, not a corpus
CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb, for backends with no tokenizer here


@dataclass(frozen=True)
class Reply:
    """One answer of the critic's model, with what it cost."""

    text: str
    tokens_in: int
    tokens_out: int


def load_prompt(path: str | Path | None, shipped: str, fields: tuple[str, ...]) -> str:
    """The prompt template at `path` (or the shipped one), checked to name every field."""
    path = Path(path) if path else PROMPTS / shipped
    try:
        if path.stat().st_size > MAX_PROMPT_BYTES:
            raise SparringError(f"prompt file {path} is over {MAX_PROMPT_BYTES // 1000} KB: a prompt, not a corpus")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SparringError(f"cannot read the prompt file {path} ({exc}): give a UTF-8 text file") from None
    missing = [f for f in fields if "{" + f + "}" not in text]
    if missing:
        raise SparringError(f"prompt file {path} lacks {', '.join('{' + f + '}' for f in missing)}: "
                            f"it must place each of {', '.join('{' + f + '}' for f in fields)}")
    return text


def fill(template: str, **values: object) -> str:
    """The template with each {field} replaced; other braces stay as written."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", str(value))
    return template


def language_model(agent: Agent, role: str) -> LLMAgent:
    if not isinstance(agent, LLMAgent):
        raise SparringError(f"the {role} must be a language model (smollm2, hf(path=DIR), openai(model=NAME)), "
                            f"not {agent.name}")
    return agent


def ask(model: LLMAgent, prompt: str, max_tokens: int, temperature: float, seed: int) -> Reply:
    """One completion of `prompt`; a backend that gives none raises, saying why."""
    [completion] = model.backend.generate([GenerationRequest(
        messages=(("user", prompt),), max_new_tokens=max_tokens, temperature=temperature, seed=seed)])
    if completion.error:
        raise SparringError(f"the critic's model gave no answer ({completion.error}): check it, then resume the run")
    return Reply(completion.text, *tokens_used(completion.prompt_token_ids, completion.token_ids, completion.usage,
                                               prompt, completion.text))


def tokens_used(prompt_ids, ids, usage: tuple[int, int] | None, prompt: str | None, text: str | None) -> tuple[int, int]:
    """Tokens in and out of one model call: its token ids where the backend has them,
    else what the server reported, else an estimate from the characters."""
    if prompt_ids or ids:
        return len(prompt_ids), len(ids)
    if usage is not None:
        return usage
    return len(prompt or "") // CHARS_PER_TOKEN, len(text or "") // CHARS_PER_TOKEN


def count_tokens(agent: Agent):
    """The playbook's token counter: the agent's own tokenizer where it has one."""
    tokenizer = getattr(getattr(agent, "backend", None), "tokenizer", None)
    if tokenizer is not None:
        return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return lambda text: -(-len(text) // CHARS_PER_TOKEN)


def sample_games(results: list[MatchResult], k: int, seed: int) -> list[MatchResult]:
    """`k` of the games, drawn from the seed, in match order."""
    chosen = random.Random(seed).sample(results, min(k, len(results)))
    return sorted(chosen, key=lambda r: r.index)


def transcript(game: Game, result: MatchResult, reveal: bool) -> str:
    """A game in words: each seat's agent, every answer (rejected ones with the
    reason), the outcome and, with `reveal`, what each seat held."""
    seats = ", ".join(f"Player {i + 1} = {name}" for i, name in enumerate(result.seats))
    lines = [f"Match {result.index} ({seats}):"]
    for turn in result.turns:
        who = f"Player {turn.seat + 1}"
        if turn.forced:
            lines.append(f"  {who}: {turn.action_name} (played at random after the rejected answers)")
        elif turn.valid:
            said = f" (message: {visible(turn.choice.message)})" if turn.choice.message else ""
            lines.append(f"  {who}: {turn.action_name}{said}")
        else:
            answer = visible((turn.choice.completion or "").strip())[:120]
            lines.append(f"  {who} answered {answer!r}: rejected, {turn.reason}")
    if result.forfeit_by is not None:
        lines.append(f"  Player {result.forfeit_by + 1} forfeited (no legal answer).")
    if reveal:
        final = replayed(game, result)
        held = "; ".join(f"Player {p + 1}: {' '.join(final.private_info(p))}" for p in range(len(result.seats)))
        lines.append(f"  Revealed at the end: {held}")
    outcome = ", ".join(f"Player {i + 1} {r:+g}" for i, r in enumerate(result.scored_returns))
    lines.append(f"  Result: {outcome}")
    return "\n".join(lines)


def replayed(game: Game, result: MatchResult) -> State:
    """The match's last state, replayed from its seed and its legal moves."""
    state = game.new_initial_state(random.Random(result.seed))
    for turn in result.turns:
        if turn.valid:
            state.apply(turn.choice.action, turn.choice.message if state.spec.messages else None)
    return state
