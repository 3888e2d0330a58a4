"""Self-evolution with language feedback, stored and resumable: an agent's strategy
is text (a playbook), rewritten from its own games by a critic, and a rewrite is
kept only when it beats the version it came from.

    sparring evolve --game kuhn_poker --agent smollm2 --generations 4 --out runs/e1

Each generation:

1. the best version so far plays `games` matches against the opponents: fixed
   references and earlier promoted versions (the population, so evolution does not
   fit one opponent);
2. the critic reads a sample of those games (outcomes, and what each player held
   where the game hides it) and writes feedback; the reviser turns the playbook and
   the feedback into a candidate playbook (`critic.py`, `playbook.py`);
3. the candidate plays its parent in pairs of matches with the same seed and
   swapped seats until a sequential probability ratio test decides
   (`promotion.py`); only a promoted candidate becomes the best version.

A revision that holds no rule is a recorded event: the parent stays, the generation
ends. Every version (RUN_DIR/versions/vN, which plays as an agent; RUN_DIR/best is
the best one), the critic's words, the reviser's text, every match and every
decision with its statistics are in the run store; a generation is stored whole or
not at all, so a run killed at any moment resumes at the generation it was in.
`budget_tokens` stops the run, between generations, before it would spend more.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparring.agents.base import Decision
from sparring.agents.llm import LLMAgent
from sparring.agents.registry import PLAYBOOK_FILE, AgentFactory
from sparring.arena.match import (
    InvalidMoveRule,
    derive_seed,
    play_matches,
    rotating_plan,
    void_note,
)
from sparring.errors import SparringError
from sparring.games.registry import make_game
from sparring.learn.checkpoint import check_stored_settings, write_json
from sparring.learn.evolve import critic as critics
from sparring.learn.evolve.playbook import (
    RULE_FORMAT,
    Playbook,
    PlaybookError,
    parse_playbook,
)
from sparring.learn.evolve.promotion import Sprt, play_promotion
from sparring.records import Generation, MatchResult, PlaybookVersion, Promotion
from sparring.store import RunStore

VERSIONS_DIR, BEST_DIR = "versions", "best"
REVEAL = ("auto", "yes", "no")


@dataclass(frozen=True)
class EvolveConfig:
    game: str = "kuhn_poker"
    agent: str = "smollm2"
    """The language model whose playbook evolves (any agent reference of a model)."""
    critic: str = ""
    """The model that writes feedback and revisions; empty means the agent's own."""
    generations: int = 4
    games: int = 32
    """Matches per generation, shared out over the opponents, seats alternating."""
    opponents: tuple[str, ...] = ("random",)
    """Fixed references every generation plays; earlier promoted versions join them."""
    population: int = 2
    """Earlier promoted versions the best one also plays (the newest first)."""
    transcripts: int = 6
    """Games the critic reads per generation."""
    max_suggestions: int = 3
    max_rules: int = 8
    max_tokens: int = 300
    """The playbook's length limit, in the agent's tokens."""
    critic_tokens: int = 400
    """Most tokens the critic (and the reviser) may write."""
    critic_temperature: float = 0.3
    """The critic's and reviser's sampling temperature: low, for words that follow the prompt's format."""
    reveal: str = "auto"
    """Show the critic what each player held at the end: yes, no, or auto (where the game hides information)."""
    critic_prompt: str = ""
    """A prompt file replacing the shipped critic prompt (it must place the same {fields})."""
    reviser_prompt: str = ""
    p1: float = 0.65
    """Promotion: the candidate's pair win rate the test must tell from 0.5."""
    alpha: float = 0.05
    """Promotion: the chance of promoting a candidate no better than its parent."""
    beta: float = 0.10
    """Promotion: the chance of rejecting a candidate that wins p1 of its pairs."""
    max_pairs: int = 60
    """Promotion: pairs of matches at most; undecided by then is a rejection."""
    budget_tokens: int = 0
    """Stop before a generation that would take the run's tokens (in and out) past this; 0: no limit."""
    seed: int = 0
    out: str = ""
    resume: str = ""

    def __post_init__(self):
        for name, low in (("generations", 0), ("games", 2), ("population", 0), ("transcripts", 1),
                          ("max_suggestions", 1), ("max_rules", 1), ("max_tokens", 16), ("critic_tokens", 16),
                          ("budget_tokens", 0)):
            if getattr(self, name) < low:
                raise SparringError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if not 0 <= self.critic_temperature <= 2:
            raise SparringError(f"critic_temperature must be between 0 and 2, got {self.critic_temperature}")
        if not self.opponents:
            raise SparringError("opponents is empty: give at least one fixed reference (e.g. random), "
                                "which every generation plays beside the earlier versions")
        if self.reveal not in REVEAL:
            raise SparringError(f"reveal '{self.reveal}' unknown: use yes, no or auto")
        Sprt(p1=self.p1, alpha=self.alpha, beta=self.beta, max_pairs=self.max_pairs)  # refuses bad settings
        if not self.out and not self.resume:
            raise SparringError("no run directory: set out=DIR for a new run or resume=DIR to continue one")

    @property
    def sprt(self) -> Sprt:
        return Sprt(p1=self.p1, alpha=self.alpha, beta=self.beta, max_pairs=self.max_pairs)

    def to_dict(self) -> dict[str, Any]:
        """The settings as stored (JSON: tuples as lists), which a resumed run takes."""
        kept = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("out", "resume")}
        return json.loads(json.dumps(kept))


# How far a run goes, which a resumed run may change; every other setting it repeats.
EXTENDABLE = ("generations", "budget_tokens")


def _fixed(settings: dict | None) -> dict | None:
    return None if settings is None else {k: v for k, v in settings.items() if k not in EXTENDABLE}


def run_evolution(config: EvolveConfig, console=None) -> Path:
    evolution = Evolution(config, console)
    try:
        evolution.run()
    finally:
        evolution.close()
    return evolution.run_dir


class Evolution:
    def __init__(self, config: EvolveConfig, console=None):
        self.config, self.console = config, console
        self.game = make_game(config.game)
        self.reveal = _reveal(config.reveal, self.game)
        self.prompts = (critics.load_prompt(config.critic_prompt, "critic.txt", critics.CRITIC_FIELDS),
                        critics.load_prompt(config.reviser_prompt, "reviser.txt", critics.REVISER_FIELDS))
        self.factory = AgentFactory(self.game)
        try:  # every refusal before the run directory is made
            self.base = critics.language_model(self.factory.make(config.agent), "agent")
            self.critic = critics.language_model(self.factory.make(config.critic or config.agent), "critic")
            self.count_tokens = critics.count_tokens(self.base)
            self.opponents = [self.factory.make(ref) for ref in config.opponents]
            if config.budget_tokens and not config.resume:
                self._check_budget()
            self.run_dir = Path(config.resume or config.out)
            self.store = RunStore(self.run_dir, create=not config.resume)
        except BaseException:
            self.factory.close()
            raise
        try:
            check_stored_settings(_fixed(self.store.get_meta("evolve_config")), _fixed(config.to_dict()), self.run_dir,
                                  resuming=bool(config.resume), kind="evolve",
                                  occupied=bool(self.store.finished_indices()))
        except BaseException:
            self.close()
            raise
        self.store.set_meta("kind", "evolve")
        self.store.set_meta("evolve_config", config.to_dict())
        self._forget_unfinished()
        if not self.store.playbooks():
            self.store.add_playbook(PlaybookVersion(0, None, 0, Playbook().to_json(), ""))
        for version in self.store.playbooks():  # the folders, again: a kill may have left one unwritten
            self._write_version(version)
        self._write_best(self.best().version)

    def run(self) -> None:
        while len(self.store.generations()) < self.config.generations and self._within_budget():
            self.generation(len(self.store.generations()) + 1)

    def close(self) -> None:
        self.factory.close()
        self.store.close()

    # ---- one generation ----------------------------------------------------------------

    def generation(self, g: int) -> Generation:
        """Play, critique, revise, test the candidate; stored at the end as one."""
        started, parent = time.perf_counter(), self.best()
        self.store.set_meta("evolve_open", {"generation": g, "first_match": self._next_index()})
        results = self._play(parent, g)
        spent = _tokens(results)
        feedback, revision, cost = self._critique(parent, results, g)
        spent = (spent[0] + cost[0], spent[1] + cost[1])
        candidate, best, event = None, parent.version, None
        try:
            playbook = parse_playbook(revision, self.config.max_rules, self.config.max_tokens, self.count_tokens,
                                      {r.index for r in results})
        except PlaybookError as err:
            event = f"revision not used: {err}; v{parent.version} stays"
            self._say(f"generation {g}: {event}")
        else:
            candidate = PlaybookVersion(max(v.version for v in self.store.playbooks()) + 1, parent.version, g,
                                        playbook.to_json(), playbook.render())
            self.store.add_playbook(candidate)
            self._write_version(candidate)
            promotion, played = self._test(candidate, parent)
            self.store.add_promotion(promotion)
            tokens = _tokens(played)
            spent = (spent[0] + tokens[0], spent[1] + tokens[1])
            best = candidate.version if promotion.decision == "promote" else parent.version
            self._say(f"generation {g}: v{candidate.version} {promotion.decision}d: {promotion.reason}")
        done = Generation(g, parent.version, candidate and candidate.version, best, feedback, revision,
                          spent[0], spent[1], time.perf_counter() - started, event)
        self.store.finish_generation(done)  # the generation is now whole
        if best != parent.version:
            self._write_best(best)
        return done

    def _play(self, parent: PlaybookVersion, g: int) -> list[MatchResult]:
        """The best version against each opponent and earlier promoted version."""
        earlier = [v for v in self.promoted() if v.version != parent.version]
        earlier = earlier[len(earlier) - self.config.population:] if self.config.population else []
        opponents = self.opponents + [self._agent(v) for v in reversed(earlier)]
        agent, first = self._agent(parent), self._next_index()
        plan, per = [], -(-self.config.games // len(opponents))
        for k, opponent in enumerate(opponents):
            indices = range(first + k * per, first + min((k + 1) * per, self.config.games))
            plan += rotating_plan(self.game, [agent, opponent], indices, self.config.seed)
        voided: dict[int, str] = {}
        results = play_matches(plan, InvalidMoveRule(), on_match_end=self.store.write_match,
                               on_match_void=voided.__setitem__)
        note = void_note(voided, len(plan))  # raises when most are void: resume the run once the server is back
        if note:
            self._say(f"generation {g}: {note}")
        return results

    def _critique(self, parent: PlaybookVersion, results: list[MatchResult], g: int) -> tuple[str, str, tuple]:
        """The critic's feedback on a sample of the games, and the reviser's new rules."""
        critic_template, reviser_template = self.prompts
        name = self._agent(parent).name
        games = critics.sample_games([r for r in results if name in r.seats], self.config.transcripts,
                                     derive_seed("critic", self.config.seed, g))
        notes = parent.notes or "(empty: no rules yet)"
        feedback = critics.ask(self.critic, critics.fill(
            critic_template, game=self.game.spec.name, player=name, playbook=notes,
            transcripts="\n\n".join(critics.transcript(self.game, r, self.reveal) for r in games),
            max_suggestions=self.config.max_suggestions,
        ), self.config.critic_tokens, self.config.critic_temperature, derive_seed("feedback", self.config.seed, g))
        revision = critics.ask(self.critic, critics.fill(
            reviser_template, game=self.game.spec.name, max_rules=self.config.max_rules, rule_format=RULE_FORMAT,
            playbook=Playbook.from_json(parent.rules).written(), feedback=feedback.text,
        ), self.config.critic_tokens, self.config.critic_temperature, derive_seed("revision", self.config.seed, g))
        cost = (feedback.tokens_in + revision.tokens_in, feedback.tokens_out + revision.tokens_out)
        return feedback.text, revision.text, cost

    def _test(self, candidate: PlaybookVersion, parent: PlaybookVersion) -> tuple[Promotion, list[MatchResult]]:
        first = self._next_index()
        decision, played = play_promotion(
            self.game, self._agent(candidate), self._agent(parent), self.config.sprt,
            seed=derive_seed("promotion", self.config.seed, candidate.version), first_index=first + first % 2,
            on_match_end=self.store.write_match)  # pairs start at an even index
        return Promotion(candidate.version, parent.version, decision.decision, decision.reason, decision.wins,
                         decision.losses, decision.ties, decision.llr), played

    # ---- versions ------------------------------------------------------------------------

    def best(self) -> PlaybookVersion:
        generations = self.store.generations()
        best = generations[-1].best if generations else 0
        return next(v for v in self.store.playbooks() if v.version == best)

    def promoted(self) -> list[PlaybookVersion]:
        """Version 0 and every promoted version, in order."""
        kept = {0} | {p.version for p in self.store.promotions() if p.decision == "promote"}
        return [v for v in self.store.playbooks() if v.version in kept]

    def _agent(self, version: PlaybookVersion) -> LLMAgent:
        return LLMAgent(self.base.backend, dataclasses.replace(self.base.config, playbook=version.notes),
                        name=f"v{version.version}")

    def _write_version(self, version: PlaybookVersion) -> None:
        """RUN_DIR/versions/vN: the version as an agent."""
        folder = self.run_dir / VERSIONS_DIR / f"v{version.version}"
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / PLAYBOOK_FILE, {"agent": self.config.agent, "version": version.version,
                                             "notes": version.notes, "rules": json.loads(version.rules)})

    def _write_best(self, version: int) -> None:
        """RUN_DIR/best: a copy of the best version's folder, swapped in by renames (a
        kill between them leaves no best folder, which the next start writes again)."""
        fresh, best, old = (self.run_dir / name for name in (f".{BEST_DIR}.new", BEST_DIR, f".{BEST_DIR}.old"))
        for leftover in (fresh, old):
            shutil.rmtree(leftover, ignore_errors=True)
        shutil.copytree(self.run_dir / VERSIONS_DIR / f"v{version}", fresh)
        if best.exists():
            best.rename(old)
        fresh.rename(best)
        shutil.rmtree(old, ignore_errors=True)

    def _next_index(self) -> int:
        return max(self.store.finished_indices(), default=-1) + 1

    def _forget_unfinished(self) -> None:
        """A generation the run was killed in is dropped whole, to be played again."""
        opened = self.store.get_meta("evolve_open")
        if opened:
            self.store.forget_generation(opened["generation"], opened["first_match"])
            self.store.set_meta("evolve_open", None)
            self._say(f"generation {opened['generation']} was not finished: playing it again")

    def _check_budget(self) -> None:
        """Refuse a budget that cannot cover one generation, estimated before any play:
        the first prompt's tokens for each decision of the generation's games and of
        the shortest promotion test, and the critic's and reviser's calls."""
        rng = random.Random(self.config.seed)
        lengths = []
        for _ in range(20):  # decisions per match, from random play
            state, n = self.game.new_initial_state(rng), 0
            while not state.is_terminal():
                state.apply(rng.choice(state.legal_actions()))
                n += 1
            lengths.append(n)
        state = self.game.new_initial_state(rng)
        decision = Decision(state=state, player=state.current_player(), rng=rng, seed=0)
        per_decision = self.count_tokens("\n".join(text for _, text in self.base.messages(decision)))
        decisions = sum(lengths) / len(lengths)
        sprt = self.config.sprt
        pairs = math.ceil(sprt.upper / math.log(sprt.p1 / sprt.p0))  # the fewest that can promote
        estimate = int(per_decision * decisions * (self.config.games / 2 + 2 * pairs)
                       + per_decision * self.config.transcripts + 2 * self.config.critic_tokens)
        if estimate > self.config.budget_tokens:
            raise SparringError(
                f"a generation takes about {estimate:,} tokens ({self.config.games} games and a promotion test of "
                f"at least {pairs} pairs at about {per_decision} prompt tokens a decision, and the critic's calls), "
                f"more than the budget of {self.config.budget_tokens:,}: raise --budget-tokens or lower --games")

    def _within_budget(self) -> bool:
        budget, done = self.config.budget_tokens, self.store.generations()
        if not budget or not done:
            return True
        spent = sum(g.tokens_in + g.tokens_out for g in done)
        last = done[-1].tokens_in + done[-1].tokens_out
        if spent + last <= budget:
            return True
        self._say(f"token budget: {spent:,} of {budget:,} spent and a generation takes about {last:,}: "
                  f"stopping after generation {len(done)}")
        return False

    def _say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False)


def _reveal(setting: str, game) -> bool:
    hides = not game.spec.perfect_information
    if setting == "yes" and not hides:
        raise SparringError(f"{game.spec.name} hides nothing from its players, so there is nothing to reveal "
                            "at the end: use reveal=no or auto")
    return hides if setting == "auto" else setting == "yes"


def _tokens(results: list[MatchResult]) -> tuple[int, int]:
    """Tokens in and out of every model answer in `results` (the versions', and any
    model reference's; other agents' answers cost none)."""
    tokens_in = tokens_out = 0
    for result in results:
        for turn in result.turns:
            if not turn.forced:
                c = turn.choice
                used = critics.tokens_used(c.prompt_token_ids, c.token_ids, c.usage, c.prompt, c.completion)
                tokens_in, tokens_out = tokens_in + used[0], tokens_out + used[1]
    return tokens_in, tokens_out
