"""Scripted reference agents: uniform random, a fixed action, perfect tic-tac-toe.

They need no model and no solver, so tests and tournaments can always field them.
All randomness comes from `Decision.rng`, so a match replays exactly from its seed.
Random and fixed-action choices carry their exact action distribution
(`Choice.action_logprobs`), so exploitability reads their policy off exactly.
"""

from __future__ import annotations

import math
import random
import re

from sparring.agents.base import Choice, Decision
from sparring.errors import SparringError


class RandomAgent:
    """Uniform over the legal actions: the baseline every agent should beat."""

    def __init__(self, name: str = "random"):
        self.name = name

    def act(self, decisions: list[Decision]) -> list[Choice]:
        return [_uniform_choice(d) for d in decisions]

    def close(self) -> None:
        pass


def _uniform_choice(decision: Decision) -> Choice:
    """A uniformly random legal action, with its distribution: log(1/|legal|) each."""
    legal = decision.state.legal_actions()
    return Choice(action=decision.rng.choice(legal), action_logprobs=dict.fromkeys(legal, -math.log(len(legal))))


class FixedActionAgent:
    """Always plays the action named `action_name` (e.g. "bet"), matched against
    `state.action_name(a)` ignoring case, spaces and punctuation (`move_key`), so
    `always_bid_1` plays goofspiel's "Bid: 1".

    Where that action is not legal, the first legal name in `fallbacks` is played
    (e.g. `FixedActionAgent("raise", fallbacks=("call",))` in Leduc, where raising
    is capped), and where none is, a uniformly random legal action drawn from
    `decision.rng`. Random rather than "first legal action": the first action is
    often `fold`, which would make the agent look weaker than the rule it stands for.

    A name the game never offers would make it a random agent under another name,
    so it is refused, with the game's move names: when it is built for a `game`,
    else at its first decision in each game (`check_move`).
    """

    def __init__(self, action_name: str, fallbacks: tuple[str, ...] = (), name: str | None = None, game=None):
        if not action_name.strip():
            raise SparringError("FixedActionAgent needs an action name, e.g. 'bet' or 'call'")
        self.action_name = action_name
        self.fallbacks = tuple(fallbacks)
        self.name = name or f"always_{action_name.strip().lower().replace(' ', '_')}"
        self._checked: set[str] = set()  # refs of the games whose moves were checked
        if game is not None:
            self.check_move(game)

    def check_move(self, game) -> None:
        """Refuse a move (and fallbacks) that no position of `game` offers, listing the
        moves seen in seeded random play; where that list does not settle (chess) the
        name must at least start like a move seen."""
        if game.spec.ref in self._checked:
            return
        seen, complete = moves_seen(game)
        for wanted in (self.action_name, *self.fallbacks):
            key = move_key(wanted)
            if key in seen or (not complete and any(s.split()[:1] == key.split()[:1] for s in seen)):
                continue
            shown = sorted(seen.values())
            listed = ", ".join(shown[:24]) + (f" and {len(shown) - 24} more" if len(shown) > 24 else "")
            raise SparringError(
                f"{self.name}: {game.spec.name} has no move '{wanted}'. Its moves: {listed}; "
                f"write always_<move>, e.g. always_{move_key(shown[0]).replace(' ', '_')}"
            )
        self._checked.add(game.spec.ref)

    def act(self, decisions: list[Decision]) -> list[Choice]:
        return [self._pick(d) for d in decisions]

    def _pick(self, decision: Decision) -> Choice:
        state = decision.state
        game = getattr(state, "game", None)
        if game is not None and state.spec.ref not in self._checked:
            self.check_move(game)
        by_name = {move_key(state.action_name(a)): a for a in state.legal_actions()}
        for wanted in (self.action_name, *self.fallbacks):
            action = by_name.get(move_key(wanted))
            if action is not None:
                return Choice(action=action, action_logprobs={action: 0.0})  # other actions: log 0
        return _uniform_choice(decision)

    def close(self) -> None:
        pass


def move_key(name: str) -> str:
    """A move name as agents' names match it: lower case, every run of other
    characters than letters and digits one space ("Bid: 1" and "bid_1" -> "bid 1")."""
    return re.sub(r"[^0-9a-z]+", " ", name.lower()).strip()


_MOVE_WALKS, _MOVE_WALK_STEPS = 48, 60  # small games end long before 60 decisions


def moves_seen(game) -> tuple[dict[str, str], bool]:
    """The moves of `game` seen in seeded random playthroughs, as {move_key: name},
    and whether the list looks complete: the second half of the walks found no move
    the first half had not (true of every small game; chess never settles)."""
    rng = random.Random(0)
    seen: dict[str, str] = {}
    after_half = 0
    for walk in range(_MOVE_WALKS):
        if walk == _MOVE_WALKS // 2:
            after_half = len(seen)
        state = game.new_initial_state(random.Random(walk))
        for _ in range(_MOVE_WALK_STEPS):
            if state.is_terminal():
                break
            legal = state.legal_actions()
            for action in legal:
                name = state.action_name(action)
                seen.setdefault(move_key(name), name)
            state.apply(rng.choice(legal))
    return seen, len(seen) == after_half


class PerfectTicTacToeAgent:
    """Exact minimax over tic-tac-toe: never loses. Among the moves with the best
    game-theoretic value it picks uniformly with `decision.rng`, so self-play
    explores every optimal line instead of replaying one.

    Works from the OpenSpiel state (`decision.state.os_state`, game `tic_tac_toe`).
    Values are memoised by board string; the whole game has 5,478 reachable
    positions, so the first call fills the table in well under a second.
    """

    def __init__(self, name: str = "perfect_tictactoe"):
        self.name = name
        # str(os_state) (the board) -> value for the player to move, in {-1, 0, 1}.
        # The board fixes who is to move (X always starts), so it is a full key.
        self._value: dict[str, float] = {}

    def act(self, decisions: list[Decision]) -> list[Choice]:
        return [Choice(action=self._best_move(d)) for d in decisions]

    def action_values(self, os_state) -> dict[int, float]:
        """Minimax value of each legal action for the player to move."""
        player = os_state.current_player()
        values = {}
        for action in os_state.legal_actions():
            child = os_state.child(action)  # child() clones: the live state is untouched
            values[action] = child.returns()[player] if child.is_terminal() else -self._negamax(child)
        return values

    def _best_move(self, decision: Decision) -> int:
        os_state = _tic_tac_toe_state(decision)
        values = self.action_values(os_state)
        best = max(values.values())
        return decision.rng.choice(sorted(a for a, v in values.items() if v == best))

    def _negamax(self, os_state) -> float:
        """Value of a non-terminal position for the player to move (zero-sum)."""
        key = str(os_state)
        if key not in self._value:
            self._value[key] = max(self.action_values(os_state).values())
        return self._value[key]

    def close(self) -> None:
        pass


def _tic_tac_toe_state(decision: Decision):
    os_state = getattr(decision.state, "os_state", None)
    game_name = os_state.get_game().get_type().short_name if os_state is not None else None
    if game_name != "tic_tac_toe":
        raise SparringError(
            f"perfect_tictactoe plays only tic-tac-toe, not {decision.state.spec.ref}: "
            "choose another agent (`sparring agents` lists them)"
        )
    return os_state
