"""Adapter from OpenSpiel games to the sparring `State` protocol.

OpenSpiel is the rules engine; this module only adds what language agents need:
chance resolved from a passed-in generator (so agents see decision points only),
named actions, and a text view per player. Game modules subclass `OpenSpielState`
and override `action_name`, `view` and `private_info`; `make_openspiel_game` gives
any other OpenSpiel game a generic view built from OpenSpiel's own strings.
"""

from __future__ import annotations

import random
import re

import pyspiel

from sparring.errors import SparringError
from sparring.games.core import GameSpec
from sparring.refs import parse_ref

_LIST_NAMES_HINT = 'python -c "import pyspiel; print(pyspiel.registered_names())"'


class OpenSpielState:
    """A live pyspiel state with chance resolved by a seeded `random.Random`.

    `history` holds the decisions played so far as (player, action, name) triples,
    and `chance` the chance outcomes in the order they were drawn, so views can be
    rendered without re-parsing OpenSpiel's strings.
    """

    def __init__(self, game: "OpenSpielGame", os_state: pyspiel.State, rng: random.Random):
        self.spec: GameSpec = game.spec
        self.game = game
        self._os = os_state
        # Chance is drawn from the caller's generator (the arena gives each match its
        # own); seeding a fresh one per match would cost more than a whole Kuhn match.
        self._rng = rng
        self.history: list[tuple[int, int, str]] = []
        self.chance: list[int] = []
        self.chance_turn: list[int] = []  # len(history) when each chance outcome fell
        self._resolve_chance()

    # -- the State protocol -------------------------------------------------------

    @property
    def os_state(self) -> pyspiel.State:
        """The live pyspiel state, for solver agents (CFR, MCTS). Do not mutate it;
        clone it first."""
        return self._os

    def current_player(self) -> int:
        player = self._os.current_player()  # OpenSpiel's terminal id is negative (-4)
        return -1 if player < 0 else player

    def is_terminal(self) -> bool:
        return self._os.is_terminal()

    def legal_actions(self) -> list[int]:
        return self._os.legal_actions()  # empty at terminal states

    def action_name(self, action: int) -> str:
        return _clean_action_string(self._os.action_to_string(self._os.current_player(), action))

    def apply(self, action: int, message: str | None = None) -> None:
        """Play `action` for the player to move, then any chance that follows.
        `message` is ignored: OpenSpiel games carry no free text."""
        legal = self._os.legal_actions()
        if action not in legal:
            over = " (the match is over)" if self._os.is_terminal() else ""
            raise ValueError(f"{self.spec.id}: action {action} is not legal here{over}; legal: {legal}")
        player = self._os.current_player()
        self.history.append((player, action, self.action_name(action)))
        self._os.apply_action(action)
        self._resolve_chance()

    def returns(self) -> list[float]:
        if not self._os.is_terminal():
            return [0.0] * self.spec.players
        return list(self._os.returns())

    def view(self, player: int) -> str:
        return _generic_view(self, player)

    def private_info(self, player: int) -> list[str]:
        return _generic_private_info(self, player)

    def clone(self) -> "OpenSpielState":
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other._os = self._os.clone()
        other._rng = random.Random()
        other._rng.setstate(self._rng.getstate())
        other.history = list(self.history)
        other.chance = list(self.chance)
        other.chance_turn = list(self.chance_turn)
        return other

    # -- helpers for subclasses -----------------------------------------------------

    def _resolve_chance(self) -> None:
        os_state = self._os
        while os_state.is_chance_node():
            chosen = pyspiel.sample_action(os_state.chance_outcomes(), self._rng.random())[0]
            self.chance.append(chosen)
            self.chance_turn.append(len(self.history))
            os_state.apply_action(chosen)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec.ref} history={[a for _, a, _ in self.history]}>"


def mover(p: int, player: int) -> str:
    """How `player`'s view names the player `p` in a move list."""
    return "you" if p == player else "opponent"


def result_line(ret: float) -> str:
    """The closing line of a win/draw/loss game (+1, 0, -1) from one player's side."""
    if ret > 0:
        return "Game over: you won (+1)."
    if ret < 0:
        return "Game over: you lost (-1)."
    return "Game over: a draw (0)."


class OpenSpielGame:
    """A sparring game backed by a pyspiel game; `state_class` renders its text."""

    def __init__(self, spec: GameSpec, os_game: pyspiel.Game, state_class: type[OpenSpielState] = OpenSpielState):
        self.spec = spec
        self.os_game = os_game
        self.state_class = state_class

    def new_initial_state(self, rng: random.Random) -> OpenSpielState:
        return self.state_class(self, self.os_game.new_initial_state(), rng)

    def __repr__(self) -> str:
        return f"<OpenSpielGame {self.spec.ref}>"


def load_openspiel(text: str) -> pyspiel.Game:
    """Load `name(params)` with pyspiel, simultaneous games as turn-based; any
    failure becomes a SparringError that says what to do."""
    name, params = parse_ref(text)
    if name not in pyspiel.registered_names():
        close = [n for n in pyspiel.registered_names() if name[:4] and name[:4] in n][:8]
        hint = f" Similar names: {', '.join(close)}." if close else ""
        raise SparringError(
            f"unknown OpenSpiel game '{name}'.{hint} Examples: tic_tac_toe, kuhn_poker, "
            f"goofspiel(num_cards=4). List all with: {_LIST_NAMES_HINT}"
        )
    os_params = {k: (str(v) if isinstance(v, (list, tuple)) else v) for k, v in params.items()}
    try:
        game = pyspiel.load_game(name, os_params)
        if game.get_type().dynamics == pyspiel.GameType.Dynamics.SIMULTANEOUS:
            game = pyspiel.load_game_as_turn_based(name, os_params)
    except (pyspiel.SpielError, RuntimeError, TypeError, ValueError) as exc:
        known = ", ".join(sorted(pyspiel.load_game(name).get_parameters())) if _loads(name) else "?"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SparringError(
            f"OpenSpiel rejected the parameters of '{text}': {first_line}. "
            f"Parameters of {name}: {known}; write them as {name}(key=value,...)."
        ) from None
    return game


def _loads(name: str) -> bool:
    try:
        pyspiel.load_game(name)
        return True
    except pyspiel.SpielError:
        return False


def spec_from_openspiel(
    game: pyspiel.Game,
    *,
    game_id: str,
    version: int,
    answer_format: str,
    name: str | None = None,
    params: dict | None = None,
) -> GameSpec:
    """The spec of an OpenSpiel-backed game: every fact OpenSpiel states is read from
    `game`; the caller gives only what sparring adds, the registry id, the rules'
    version, the answer format and, where OpenSpiel's long name reads badly, a name."""
    gtype = game.get_type()
    return GameSpec(
        id=game_id,
        version=version,
        name=name or gtype.long_name,
        players=game.num_players(),
        perfect_information=gtype.information == pyspiel.GameType.Information.PERFECT_INFORMATION,
        chance=gtype.chance_mode != pyspiel.GameType.ChanceMode.DETERMINISTIC,
        zero_sum=gtype.utility == pyspiel.GameType.Utility.ZERO_SUM,
        utility_range=(float(game.min_utility()), float(game.max_utility())),
        # Decisions only, as our states resolve chance: OpenSpiel's max_game_length
        # leaves chance out (max_move_number adds it back: Kuhn 3 + 2 deals = 5).
        max_length=game.max_game_length(),
        answer_format=answer_format,
        params=tuple(sorted((params or {}).items())),
    )


def make_openspiel_game(text: str) -> OpenSpielGame:
    """Any OpenSpiel game, `name(k=v,...)`, with the generic text view. The id keeps
    `name`: a simultaneous game loaded turn-based has another short name."""
    game = load_openspiel(text)
    name, params = parse_ref(text)
    spec = spec_from_openspiel(game, game_id="openspiel:" + name, version=1, answer_format="Answer: <action>", params=params)
    return OpenSpielGame(spec, game, OpenSpielState)


# -- the generic view ------------------------------------------------------------------

_PLAYER_PREFIX = re.compile(r"^\[P\d+\]")


def _clean_action_string(text: str) -> str:
    # load_game_as_turn_based prefixes actions with "[P0]"; the seat is known anyway.
    return _PLAYER_PREFIX.sub("", text).strip()


def _knowledge(state: OpenSpielState, player: int) -> str:
    """OpenSpiel's own account of what `player` knows: the observation for perfect
    information games (a board reads better than an action list), the
    information state otherwise."""
    os_state, gtype = state.os_state, state.game.os_game.get_type()
    if state.spec.perfect_information and gtype.provides_observation_string:
        return os_state.observation_string(player)
    if gtype.provides_information_state_string:
        return os_state.information_state_string(player)
    if gtype.provides_observation_string:
        return os_state.observation_string(player)
    return str(os_state) if state.spec.perfect_information else ""


def _generic_view(state: OpenSpielState, player: int) -> str:
    spec = state.spec
    lines = [
        f"Game: {spec.name} ({spec.players} players). You are Player {player + 1} "
        f"(called player {player} or P{player} in the text below)."
    ]
    known = _knowledge(state, player).strip()
    if known:
        lines += ["What you know:", known]
    if state.is_terminal():
        lines.append(f"The game is over. Your return: {state.returns()[player]:+g}.")
    elif state.current_player() == player:
        lines.append("Your turn. Legal actions:")
        lines += [f"{i}. {state.action_name(a)}" for i, a in enumerate(state.legal_actions(), 1)]
        lines.append('Answer with one line: "Answer: <action>" (the action text, not its number).')
    else:
        lines.append(f"Waiting for Player {state.current_player() + 1}.")
    return "\n".join(lines)


def _generic_private_info(state: OpenSpielState, player: int) -> list[str]:
    """Lines of `player`'s information state that no other player's contains.
    Short lines are skipped: they would match unrelated text by accident."""
    if state.spec.perfect_information or state.is_terminal():
        return []
    if not state.game.os_game.get_type().provides_information_state_string:
        return []
    os_state = state.os_state
    mine = os_state.information_state_string(player).splitlines()
    others = [os_state.information_state_string(p) for p in range(state.spec.players) if p != player]
    return [ln.strip() for ln in mine if len(ln.strip()) >= 12 and not any(ln in o for o in others)]
