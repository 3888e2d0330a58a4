"""The typed records every layer exchanges: what an agent chose, each turn of a
match, a finished match, and the payoff matrix between agents.

They sit at the bottom of the package (they import nothing of sparring), so the
arena writes them, the store keeps them, and ratings, reports and the trainer read
them, without any of these depending on another. All are frozen: a record says
what happened and is never edited afterwards.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sampling:
    """How an answer was drawn: the settings the trainer must divide by again."""

    mode: str  # "free" (text parsed) or "scored" (softmax over the legal answers)
    temperature: float
    top_p: float = 1.0


@dataclass(frozen=True)
class Choice:
    """What an agent decided for one decision. `action is None` means an invalid
    answer, with `reason` saying why."""

    action: int | None
    reason: str | None = None  # why the answer is not a legal action
    message: str | None = None  # free-text message, for games that allow one
    prompt: str | None = None  # the rendered prompt (LLM agents)
    completion: str | None = None  # the model's raw text
    prompt_token_ids: tuple[int, ...] = ()  # the prompt as the model saw it
    token_ids: tuple[int, ...] = ()  # sampled completion tokens
    logprobs: tuple[float, ...] = ()  # behaviour log-prob per token
    action_logprobs: dict[int, float] | None = None  # log pi(a) per legal a, where the agent knows it
    # scored choice: each legal action's answer tokens as scored, so the trainer can
    # take the gradient of the softmax over all of them, not of the chosen one alone
    option_token_ids: dict[int, tuple[int, ...]] | None = None
    sampling: Sampling | None = None  # None for agents that do not sample from a model
    policy_version: str | None = None  # the weights (or adapter) that produced the answer
    backend_error: str | None = None  # the backend gave no answer after its retries: not the model's move
    usage: tuple[int, int] | None = None  # (prompt, completion) tokens as an API server counted them; not stored
    batch_s: float | None = None  # measured wall time of the agent call that answered (None: not timed)
    batch_size: int | None = None  # decisions that call answered together, all with this batch_s


@dataclass(frozen=True)
class Turn:
    """One attempt at one decision of a match, valid or not."""

    decision: int  # decision number within the match (retries share it)
    attempt: int  # 0 for the first try, then 1, 2, ... for retries
    seat: int  # the seat that moved
    agent: str  # the agent's name in that seat
    view: str  # the seat's view of the game when it chose ("" when not recorded)
    choice: Choice  # what the agent answered
    valid: bool
    action_name: str | None = None  # the played action's name; None when rejected
    reason: str | None = None  # why the answer was rejected
    forced: bool = False  # a random legal move played after the retries ran out

    @property
    def action(self) -> int | None:
        """The action played; None when this attempt was rejected."""
        return self.choice.action if self.valid else None


@dataclass(frozen=True)
class MatchRecord:
    """A finished match without its turns: what results, ratings and payoff
    matrices read, from memory or from a run store alike."""

    index: int  # match index within its run
    game: str  # game reference with version, e.g. kuhn_poker@1
    seed: int
    seats: tuple[str, ...]  # agent name per seat
    returns: tuple[float, ...]  # the game's return per seat; a forfeit is the game's loss for the offender
    forfeit_by: int | None  # the seat that forfeited, if any
    invalid: tuple[int, ...]  # rejected answers per seat
    turns: int  # attempts recorded, retries included
    wall_s: float

    def seat_of(self, agent: str) -> int:
        """The seat `agent` played (the first, if it played several)."""
        return self.seats.index(agent)


@dataclass(frozen=True)
class MatchResult:
    """A finished match with every turn."""

    index: int
    game: str
    seed: int
    seats: tuple[str, ...]
    # The reward per seat the trainer reads: the game's returns, or for a forfeit the
    # invalid-move rule's penalty (a shaping of the training reward only).
    returns: tuple[float, ...]
    turns: tuple[Turn, ...]
    forfeit_by: int | None = None
    wall_s: float = 0.0
    # The game's own result where it differs from `returns`: a forfeit is the game's
    # loss for the offender and win for the others. None: `returns` is the game's result.
    game_returns: tuple[float, ...] | None = None

    def seat_of(self, agent: str) -> int:
        return self.seats.index(agent)

    @property
    def scored_returns(self) -> tuple[float, ...]:
        """The game's result per seat: what results, ratings, benchmarks and the store use."""
        return self.game_returns if self.game_returns is not None else self.returns

    @property
    def record(self) -> MatchRecord:
        invalid = [0] * len(self.seats)
        for turn in self.turns:
            invalid[turn.seat] += not turn.valid
        return MatchRecord(
            index=self.index, game=self.game, seed=self.seed, seats=self.seats, returns=self.scored_returns,
            forfeit_by=self.forfeit_by, invalid=tuple(invalid), turns=len(self.turns), wall_s=self.wall_s,
        )


@dataclass(frozen=True)
class PayoffMatrix:
    """Agent i's results against agent j, pooled over both seats. Every array is
    (n, n), row = the agent, column = its opponent; unplayed cells have mean and
    ci95 NaN and zero counts. A match of an agent against itself lands on the
    diagonal once per seat."""

    agents: tuple[str, ...]
    mean: np.ndarray  # mean return of i against j
    ci95: np.ndarray  # half-width of its normal-approximation 95% interval
    games: np.ndarray  # matches of i against j
    wins: np.ndarray
    draws: np.ndarray
    losses: np.ndarray
    invalid: np.ndarray  # invalid answers given by i in its matches against j
    forfeits: np.ndarray  # matches against j that i lost by running out of retries

    def index(self, agent: str) -> int:
        return self.agents.index(agent)


@dataclass(frozen=True)
class ExploitabilityEntry:
    """One exploitability measurement of a policy, as runs record it."""

    step: int  # the training step (or population iteration) of the measured policy
    exploitability: float | None  # NashConv / 2 in two-player zero-sum games
    nash_conv: float
    mode: str  # "exact" or "sampled"
    game: str
    agent: str | None = None
    checkpoint: str | None = None
    interval: tuple[float, float] | None = None  # bootstrap 95% interval (sampled mode)
    invalid_rate: float | None = None  # share of sampled answers that named no legal move
    forfeit_exploitability: float | None = None  # with every invalid answer played as a forfeit (sampled mode)


@dataclass(frozen=True)
class PopulationMember:
    """One member of a population: its exact behaviour at every information state
    (empty in a game too large to enumerate), and the checkpoint (a LoRA adapter)
    that plays it, if it is a model."""

    member: int  # index in the order added
    name: str
    checkpoint: str | None  # run-relative checkpoint directory; None for the base model or a tabular member
    policy: dict[str, dict[int, float]]  # information state -> {action: probability}; {} when not enumerable


@dataclass(frozen=True)
class PopulationIteration:
    """A population solved after `iteration` members were added to the first."""

    iteration: int
    meta_strategy: tuple[float, ...]  # one probability per member, in the order added
    exploitability: float | None  # of the mixture's behaviour policy, exact; None in a game too large to walk
    seconds: float  # wall time of the run so far


@dataclass(frozen=True)
class PlaybookVersion:
    """One version of an evolving agent's playbook (version 0: none)."""

    version: int
    parent: int | None  # the version it was revised from
    generation: int  # the generation that wrote it
    rules: str  # JSON list of {when, do, because, evidence} (learn.evolve.playbook)
    notes: str  # the playbook as the agent reads it

    def diff_from(self, parent: "PlaybookVersion", context: int = 0) -> list[str]:
        """The notes against the parent's as a unified diff by line, past the notes'
        heading line and the diff's two file headers."""
        lines = difflib.unified_diff(parent.notes.splitlines()[1:], self.notes.splitlines()[1:],
                                     f"v{parent.version}", f"v{self.version}", lineterm="", n=context)
        return list(lines)[2:]


@dataclass(frozen=True)
class Promotion:
    """The test of a candidate version against its parent (learn.evolve.promotion)."""

    version: int
    parent: int
    decision: str  # promote or reject
    reason: str
    wins: int  # pairs of matches (same seed, seats swapped) the candidate won
    losses: int
    ties: int
    llr: float  # the sequential test's log-likelihood ratio at its decision


@dataclass(frozen=True)
class Generation:
    """One finished generation of an evolution run."""

    generation: int
    parent: int  # the best version it started from
    candidate: int | None  # the version its revision made; None when the revision held no rule
    best: int  # the best version after it
    feedback: str  # the critic's words
    revision: str  # the reviser's text as written
    tokens_in: int  # prompt tokens of every model call of the generation
    tokens_out: int  # tokens the models wrote
    seconds: float
    event: str | None = None  # what happened instead of a candidate, if anything
