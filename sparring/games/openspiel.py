"""Adapter from OpenSpiel games to the sparring `State` protocol.

OpenSpiel is the rules engine; this module only adds what language agents need:
chance resolved from a passed-in generator (so agents see decision points only),
named actions, and a text view per player. Game modules subclass `OpenSpielState`
and override `action_name`, `view` and `private_info`; `make_openspiel_game` gives
any other OpenSpiel game a generic view built from OpenSpiel's own strings.
"""

from __future__ import annotations

import os
import random
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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
    """Load `name(params)` with pyspiel, simultaneous games as turn-based, and build
    its first position; any failure becomes a SparringError that names the game and
    the parameters OpenSpiel rejected, and says what to do."""
    name, params = parse_ref(text)
    if name not in pyspiel.registered_names():
        close = [n for n in pyspiel.registered_names() if name[:4] and name[:4] in n][:8]
        hint = f" Similar names: {', '.join(close)}." if close else ""
        raise SparringError(
            f"unknown OpenSpiel game '{name}'.{hint} Examples: tic_tac_toe, kuhn_poker, "
            f"goofspiel(num_cards=4). List all with: {_LIST_NAMES_HINT}"
        )
    os_params = {k: (str(v) if isinstance(v, (list, tuple)) else v) for k, v in params.items()}
    with _quiet_native_stderr():
        default = _default_game(name)
        refused = _refused_values(name, os_params, default)
        if refused:
            raise SparringError(f"OpenSpiel cannot play {name} with {refused}. {_parameters_text(name, default)}")
        if default is not None:  # OpenSpiel takes no whole number for a real parameter
            reals = {k for k, v in default.get_parameters().items() if isinstance(v, float)}
            os_params = {k: float(v) if k in reals else v for k, v in os_params.items()}
        try:
            return _load_playable(name, os_params)
        except _OPENSPIEL_ERRORS as exc:
            raise SparringError(_rejected(name, os_params, exc, default)) from None


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """OpenSpiel's C++ prints every error it raises to the process's stderr first;
    the SparringError says it once, with what to do, so that copy goes nowhere."""
    sys.stderr.flush()
    saved, sink = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(sink)


# What OpenSpiel raises for parameters it refuses: its own checks (SpielError), C++
# exceptions pybind11 translates (std::length_error -> ValueError, bad_alloc ->
# MemoryError, out_of_range -> IndexError), and pybind11's type errors.
_OPENSPIEL_ERRORS = (pyspiel.SpielError, RuntimeError, TypeError, ValueError, MemoryError, IndexError, OverflowError)


def _default_game(name: str) -> pyspiel.Game | None:
    try:
        return pyspiel.load_game(name)
    except _OPENSPIEL_ERRORS:
        return None


def _refused_values(name: str, os_params: dict, default: pyspiel.Game | None) -> str | None:
    """The first parameter whose value cannot be right, judged from the default game
    before OpenSpiel's C++ sees it: an unknown name, another kind of value than the
    default's, a seat count outside the game's range, or a count (a whole number
    whose default is positive: cards, dice, rows) below 1. Some games read a
    negative count before checking it (goofspiel(num_cards=-1) corrupts memory and
    may abort the process later), so these never reach OpenSpiel."""
    if default is None:
        return None
    defaults, gtype = default.get_parameters(), default.get_type()
    for key, value in os_params.items():
        if key not in defaults:
            return f"{key}={value!r}: it has no parameter '{key}'"
        wanted = defaults[key]
        if not _same_kind(value, wanted):
            return f"{key}={value!r}: it takes {type(wanted).__name__} values, like its default {wanted!r}"
        if key == "players" and not gtype.min_num_players <= value <= gtype.max_num_players:
            return f"players={value}: it seats {gtype.min_num_players} to {gtype.max_num_players} players"
        if type(wanted) is int and wanted > 0 and value < 1:
            return f"{key}={value}: it counts something (default {wanted}) and must be at least 1"
    return None


def _same_kind(value, wanted) -> bool:
    """Whether `value` can stand for a parameter whose default is `wanted`; a whole
    number stands for a real one."""
    if isinstance(wanted, bool) or isinstance(value, bool):
        return isinstance(wanted, bool) and isinstance(value, bool)
    if isinstance(wanted, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(wanted))


def _load_playable(name: str, os_params: dict) -> pyspiel.Game:
    """The game, checked to reach its first decision: many games check their
    parameters only when a state is built, which would fail the first match after
    the run began."""
    game = pyspiel.load_game(name, os_params)
    if game.get_type().dynamics == pyspiel.GameType.Dynamics.SIMULTANEOUS:
        game = pyspiel.load_game_as_turn_based(name, os_params)
    state = game.new_initial_state()
    while state.is_chance_node():
        state.apply_action(state.chance_outcomes()[0][0])
    if not state.is_terminal():
        for action in state.legal_actions():
            state.action_to_string(state.current_player(), action)
    return game


def _rejected(name: str, os_params: dict, exc: BaseException, default: pyspiel.Game | None) -> str:
    """The message for parameters OpenSpiel refused: its reason and the game's
    parameters with their defaults. Where several were given and OpenSpiel's own
    check refused them (a SpielError, a clean refusal), each is tried alone to name
    the one at fault."""
    culprits = list(os_params)
    if isinstance(exc, pyspiel.SpielError) and len(os_params) > 1:
        culprits = [k for k in os_params if not _playable(name, {k: os_params[k]})] or culprits
    given = ", ".join(f"{k}={os_params[k]!r}" for k in culprits) or "its default parameters"
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    reason = re.sub(r"^\S+\.cc:\d+\s+", "", reason)  # the C++ source line of the check tells a user nothing
    return f"OpenSpiel cannot play {name} with {given} ({reason}). {_parameters_text(name, default)}"


def _parameters_text(name: str, default: pyspiel.Game | None) -> str:
    defaults = default.get_parameters() if default is not None else {}
    known = ", ".join(f"{k} (default {v!r})" for k, v in sorted(defaults.items())) or "none"
    return f"Parameters of {name}: {known}; write them as openspiel:{name}(key=value,...)."


def _playable(name: str, os_params: dict) -> bool:
    try:
        _load_playable(name, os_params)
        return True
    except _OPENSPIEL_ERRORS:
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
