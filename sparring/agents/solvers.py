"""Solver agents built on OpenSpiel's C++ algorithms: CFR for small imperfect-
information games, MCTS for perfect-information games.

Both read the live pyspiel state an OpenSpiel-backed sparring state exposes as
`state.os_state`, and draw all randomness from `Decision.rng`.

CFR policies are solved once and cached as JSON under the user's cache directory
(`sparring.paths.cache_dir("solvers")`), keyed by game string, algorithm,
iterations and OpenSpiel version. Measured on a shared 2-core CPU machine with
OpenSpiel 2.0.2 (CFR+; seconds include computing the exploitability):

    game         tree nodes  iterations  seconds  exploitability
    kuhn_poker           58      10,000     0.35        0.00001
    leduc_poker       9,457         200     1.9         0.0050
    leduc_poker       9,457       1,000     8.6         0.00026
    liars_dice      294,883         100    24           0.0049

The default iteration count spends about 10 million node visits
(`_DEFAULT_NODE_VISITS`): 10,000 for Kuhn, 1,057 for Leduc (9-11 s, exploitability
0.00024), and the floor of 100 for one-die liar's dice (~25 s).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pyspiel

from sparring.agents.base import Choice, Decision
from sparring.errors import SparringError
from sparring.paths import cache_dir

CFR_ALGORITHMS = ("cfr+", "cfr")
# Refuse trees beyond this: one CFR iteration visits every node, so 1M nodes
# already costs ~0.2 s per iteration here, and the JSON policy grows with it.
MAX_CFR_TREE_NODES = 1_000_000
_DEFAULT_NODE_VISITS = 10_000_000
_MIN_ITERATIONS, _MAX_ITERATIONS = 100, 10_000
_CACHE_FORMAT = 1

_Info = pyspiel.GameType.Information
_Utility = pyspiel.GameType.Utility
_Dynamics = pyspiel.GameType.Dynamics


def _os_game_of(game) -> pyspiel.Game:
    """Accept a pyspiel game or a sparring game that wraps one (`.os_game`)."""
    if isinstance(game, pyspiel.Game):
        return game
    os_game = getattr(game, "os_game", None)
    if isinstance(os_game, pyspiel.Game):
        return os_game
    spec = getattr(game, "spec", None)
    what = f"{spec.name} has its own rules" if spec is not None else f"got {game!r}"
    raise SparringError(
        f"solver agents (cfr, mcts) need an OpenSpiel game; {what}: use a "
        "game backed by OpenSpiel (kuhn_poker, tictactoe, openspiel:NAME) or another agent"
    )


def _os_state_of(decision: Decision, os_game: pyspiel.Game, agent: str) -> pyspiel.State:
    """The live pyspiel state of `decision`, checked to be a state of `os_game`."""
    os_state = getattr(decision.state, "os_state", None)
    if os_state is None:
        raise SparringError(
            f"{agent} plays only OpenSpiel-backed games; {decision.state.spec.ref} has no "
            "OpenSpiel state: use random or an LLM agent there"
        )
    if str(os_state.get_game()) != str(os_game):
        raise SparringError(
            f"{agent} was built for {os_game} but is asked to play {os_state.get_game()}: "
            "build the agent from the game it plays"
        )
    return os_state


# -- CFR ------------------------------------------------------------------------------


def count_tree_nodes(os_game: pyspiel.Game, cap: int) -> int:
    """Histories in the full game tree (chance nodes included), counting stops
    just past `cap`. Leduc has 9,457; the walk costs about 1 µs a node."""
    count, stack = 0, [os_game.new_initial_state()]
    while stack and count <= cap:
        state = stack.pop()
        count += 1
        if not state.is_terminal():
            stack.extend(state.child(a) for a in state.legal_actions())
    return count


def check_cfr_game(os_game: pyspiel.Game) -> int:
    """Raise SparringError unless CFR can solve `os_game` here; return its tree size."""
    gtype, name = os_game.get_type(), str(os_game)
    if gtype.information == _Info.PERFECT_INFORMATION:
        why = "it has perfect information: use mcts" + (" or perfect" if gtype.short_name == "tic_tac_toe" else "")
    elif os_game.num_players() != 2:
        why = (
            f"it has {os_game.num_players()} players; CFR's equilibrium guarantee holds "
            "only for 2: use random or an LLM agent"
        )
    elif gtype.utility != _Utility.ZERO_SUM:
        why = "it is not zero-sum, so a CFR average need not be an equilibrium: use random or an LLM agent"
    elif gtype.dynamics != _Dynamics.SEQUENTIAL:
        why = (
            "it has simultaneous moves: load it turn-based "
            "(pyspiel.load_game_as_turn_based, as openspiel:NAME does)"
        )
    elif not gtype.provides_information_state_string:
        why = "OpenSpiel gives no information-state strings for it"
    else:
        nodes = count_tree_nodes(os_game, MAX_CFR_TREE_NODES)
        if nodes <= MAX_CFR_TREE_NODES:
            return nodes
        why = (
            f"its tree has more than {MAX_CFR_TREE_NODES:,} histories, too many to solve "
            "exactly here: pick smaller parameters or use an LLM agent"
        )
    raise SparringError(
        f"cfr solves small 2-player zero-sum imperfect-information games (Kuhn, Leduc, "
        f"one-die liar's dice); it cannot play {name}: {why}"
    )


def cfr_can_solve(os_game: pyspiel.Game) -> bool:
    """Whether `check_cfr_game` accepts `os_game`: for hints that name cfr only
    where it plays."""
    try:
        check_cfr_game(os_game)
        return True
    except SparringError:
        return False


def default_cfr_iterations(tree_nodes: int) -> int:
    """About 10M node visits, clamped to [100, 10,000]: 10,000 for Kuhn
    (exploitability 1e-5), 1,057 for Leduc (~3e-4, ~9 s on 2 cores)."""
    return max(_MIN_ITERATIONS, min(_MAX_ITERATIONS, _DEFAULT_NODE_VISITS // tree_nodes))


@dataclass
class SolvedPolicy:
    """An average CFR policy: information-state string -> {action: probability}."""

    game: str  # str(os_game), e.g. "leduc_poker()"
    algorithm: str
    iterations: int
    table: dict[str, dict[int, float]]
    exploitability: float  # OpenSpiel's (NashConv / 2), in the game's utility units
    solve_seconds: float

    def to_pyspiel(self) -> pyspiel.TabularPolicy:
        """As a C++ policy, for `pyspiel.exploitability` and friends."""
        return pyspiel.TabularPolicy({k: list(v.items()) for k, v in self.table.items()})

    def to_python(self, os_game: pyspiel.Game):
        """As `open_spiel.python.policy.TabularPolicy`, for the python algorithms
        (`expected_game_score.policy_value`, `exploitability.exploitability`)."""
        from open_spiel.python import policy as os_policy

        return os_policy.pyspiel_policy_to_python_policy(os_game, self.to_pyspiel())

    def to_json(self) -> dict:
        return {
            "format": _CACHE_FORMAT,
            "game": self.game,
            "algorithm": self.algorithm,
            "iterations": self.iterations,
            "openspiel": _openspiel_version(),
            "exploitability": self.exploitability,
            "solve_seconds": self.solve_seconds,
            # JSON keys are strings: actions are stored as [action, prob] pairs.
            "policy": {k: [[a, p] for a, p in v.items()] for k, v in self.table.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> "SolvedPolicy":
        return cls(
            game=data["game"],
            algorithm=data["algorithm"],
            iterations=int(data["iterations"]),
            table={k: {int(a): float(p) for a, p in v} for k, v in data["policy"].items()},
            exploitability=float(data["exploitability"]),
            solve_seconds=float(data["solve_seconds"]),
        )


def _openspiel_version() -> str:
    try:
        return importlib.metadata.version("open_spiel")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def cfr_cache_path(os_game: pyspiel.Game, algorithm: str, iterations: int, root: Path | None = None) -> Path:
    """Cache file of a solve: a readable slug plus a hash of the exact key, since
    game strings carry characters ('(', ',', '=') that file names should not."""
    key = f"{os_game}|{algorithm}|{iterations}|openspiel-{_openspiel_version()}"
    slug = re.sub(r"[^A-Za-z0-9_.+-]+", "_", f"{os_game.get_type().short_name}_{algorithm}_{iterations}")
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return (root or cache_dir("solvers")) / f"{slug}_{digest}.json"


def solve_cfr(
    game,
    algorithm: str = "cfr+",
    iterations: int | None = None,
    cache: Path | bool = True,
) -> SolvedPolicy:
    """Solve `game` with OpenSpiel's C++ CFR+ (or vanilla CFR) and return the average
    policy, loading it from the cache when this exact solve was done before.

    `cache`: True for the user cache dir, a folder to use another, False for none.
    """
    os_game = _os_game_of(game)
    if algorithm not in CFR_ALGORITHMS:
        raise SparringError(f"unknown CFR algorithm '{algorithm}': choose one of {', '.join(CFR_ALGORITHMS)}")
    nodes = check_cfr_game(os_game)
    if iterations is None:
        iterations = default_cfr_iterations(nodes)
    if iterations < 1:
        raise SparringError(f"cfr needs at least 1 iteration, got {iterations}")

    path = None
    if cache is not False:
        path = cfr_cache_path(os_game, algorithm, iterations, None if cache is True else Path(cache))
        if path.exists():
            try:
                return SolvedPolicy.from_json(json.loads(path.read_text()))
            except (ValueError, KeyError, TypeError):
                pass  # a corrupt or old-format file: solve again and overwrite it

    start = time.perf_counter()
    solver = pyspiel.CFRPlusSolver(os_game) if algorithm == "cfr+" else pyspiel.CFRSolver(os_game)
    for _ in range(iterations):
        solver.evaluate_and_update_policy()
    average = solver.tabular_average_policy()
    seconds = time.perf_counter() - start
    solved = SolvedPolicy(
        game=str(os_game),
        algorithm=algorithm,
        iterations=iterations,
        table={k: {int(a): float(p) for a, p in v} for k, v in average.policy_table().items()},
        exploitability=float(pyspiel.exploitability(os_game, average)),
        solve_seconds=seconds,
    )
    if path is not None:
        # Write then rename, so an interrupted run never leaves half a file.
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(solved.to_json()))
        os.replace(tmp, path)
    return solved


class TabularAgent:
    """Plays a tabular policy of an OpenSpiel game: information-state string ->
    {action: probability}, sampled with `decision.rng`, reporting the exact
    distribution (`action_logprobs`). A CFR solve, or the behaviour policy of a
    population's mixture, plays this way."""

    def __init__(self, os_game, table: dict[str, dict[int, float]], name: str = "policy", source: str = ""):
        self.os_game = _os_game_of(os_game)
        self.table = table
        self.name = name
        self.source = source  # where the table came from, for error messages

    def act(self, decisions: list[Decision]) -> list[Choice]:
        return [self._act_one(d) for d in decisions]

    def _act_one(self, decision: Decision) -> Choice:
        os_state = _os_state_of(decision, self.os_game, self.name)
        info = os_state.information_state_string(decision.player)
        probs = self.table.get(info)
        if probs is None:
            raise SparringError(
                f"{self.name}: information state {info!r} is not in the policy of {self.source or self.os_game}"
            )
        legal = os_state.legal_actions()
        weights = [probs.get(a, 0.0) for a in legal]
        action = decision.rng.choices(legal, weights=weights)[0]
        logprobs = {a: math.log(w) if w > 0 else float("-inf") for a, w in zip(legal, weights)}
        return Choice(action=action, action_logprobs=logprobs)

    def close(self) -> None:
        pass


class CFRAgent(TabularAgent):
    """Plays the average policy of CFR+ (Tammelin 2014) or CFR (Zinkevich et al.
    2007), an approximate Nash equilibrium. The solve happens at construction
    (cached on disk), so errors and the wait come before the first match."""

    def __init__(
        self,
        os_game,
        iterations: int | None = None,
        algorithm: str = "cfr+",
        cache: Path | bool = True,
        name: str | None = None,
    ):
        os_game = _os_game_of(os_game)
        self.solved = solve_cfr(os_game, algorithm, iterations, cache)
        where = "" if isinstance(cache, bool) else Path(cache)
        stale = cfr_cache_path(os_game, algorithm, self.solved.iterations, where or None)
        super().__init__(os_game, self.solved.table, name or algorithm,
                         source=f"the {algorithm} solve of {self.solved.game} (delete {stale} to solve again)")

    def policy(self) -> SolvedPolicy:
        return self.solved


def load_policy_table(path: Path) -> dict[str, dict[int, float]]:
    """A tabular policy file: {"policy": {information state: [[action, probability], ...]}}
    (the format `SolvedPolicy.to_json` and population runs write)."""
    try:
        data = json.loads(Path(path).read_text())
        return {k: {int(a): float(p) for a, p in v} for k, v in data["policy"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SparringError(f"{path} is not a policy file ({exc}): expected JSON with a 'policy' table") from None


def policy_json(table: dict[str, dict[int, float]], **about) -> dict:
    """A tabular policy in the file format `load_policy_table` reads."""
    return {**about, "policy": {k: [[a, p] for a, p in v.items()] for k, v in table.items()}}


# -- MCTS -----------------------------------------------------------------------------


class MCTSAgent:
    """Monte-Carlo tree search with UCT (Kocsis & Szepesvári 2006) and random
    rollouts, OpenSpiel's C++ `MCTSBot`, for any perfect-information game.

    A fresh bot is seeded from `decision.rng` for every decision, so a match
    replays exactly from its seed whatever else the agent played before. With
    `solve=True` proven wins and losses are backed up exactly (MCTS-Solver).
    1,000 simulations take about 2 ms on tic-tac-toe and 10 ms on connect four.
    """

    def __init__(
        self,
        os_game,
        simulations: int = 1000,
        rollouts: int = 1,
        uct_c: float = 2.0,
        solve: bool = True,
        max_memory_mb: int = 1000,
        name: str = "mcts",
    ):
        self.os_game = _os_game_of(os_game)
        if self.os_game.get_type().information != _Info.PERFECT_INFORMATION:
            instead = "cfr (it solves this game), random or an LLM agent" if cfr_can_solve(self.os_game) \
                else "random or an LLM agent (cfr cannot solve this game either)"
            raise SparringError(
                f"mcts needs perfect information, and {self.os_game} hides information from players: use {instead}"
            )
        if simulations < 1 or rollouts < 1:
            raise SparringError(
                f"mcts needs simulations >= 1 and rollouts >= 1, got {simulations} and {rollouts}"
            )
        self.simulations = simulations
        self.rollouts = rollouts
        self.uct_c = uct_c
        self.solve = solve
        self.max_memory_mb = max_memory_mb
        self.name = name

    def act(self, decisions: list[Decision]) -> list[Choice]:
        return [Choice(action=self._search(d)) for d in decisions]

    def _search(self, decision: Decision) -> int:
        os_state = _os_state_of(decision, self.os_game, self.name)
        evaluator = pyspiel.RandomRolloutEvaluator(self.rollouts, decision.rng.getrandbits(31))
        bot = pyspiel.MCTSBot(
            self.os_game,
            evaluator,
            self.uct_c,
            self.simulations,
            self.max_memory_mb,
            self.solve,
            decision.rng.getrandbits(31),
            False,  # verbose
        )
        return bot.step(os_state.clone())

    def close(self) -> None:
        pass
