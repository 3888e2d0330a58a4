"""The game contract, checked by random play: `check_game` asserts the invariants
every game must keep, `transcript` renders a seeded match for the golden files."""

from __future__ import annotations

import random

from sparring.games.core import State
from sparring.games.registry import make_game


def _match_rng(seed: int, index: int) -> random.Random:
    return random.Random(seed * 1_000_003 + index)


def _check_state(ref: str, state: State, decisions: int) -> None:
    spec = state.spec
    where = f"{ref}, after {decisions} decisions"
    legal = state.legal_actions()
    player = state.current_player()
    if state.is_terminal():
        assert player == -1, f"{where}: terminal state but current_player() is {player}, not -1"
        assert legal == [], f"{where}: terminal state has legal actions {legal}"
        return
    assert 0 <= player < spec.players, f"{where}: current_player() {player} not in 0..{spec.players - 1}"
    assert legal, f"{where}: no legal actions before the end of the match"
    assert legal == sorted(set(legal)), f"{where}: legal actions not ascending and unique: {legal}"
    names = [state.action_name(a) for a in legal]
    assert all(n and n == n.strip() for n in names), f"{where}: empty or padded action name in {names}"
    assert len(set(n.lower() for n in names)) == len(names), f"{where}: action names not distinct: {names}"
    assert state.returns() == [0.0] * spec.players, f"{where}: non-zero returns {state.returns()} before the end"


def _check_privacy(ref: str, state: State, decisions: int) -> list[str]:
    """Render every player's view; assert none shows another player's private info."""
    n = state.spec.players
    views = [state.view(p) for p in range(n)]
    for owner in range(n):
        for secret in state.private_info(owner):
            assert secret, f"{ref}: empty private_info string for player {owner}"
            for p in range(n):
                if p == owner:
                    assert secret in views[p], (
                        f"{ref}, after {decisions} decisions: player {owner}'s private info "
                        f"{secret!r} is missing from their own view, so the privacy check is void"
                    )
                else:
                    assert secret not in views[p], (
                        f"{ref}, after {decisions} decisions: player {p}'s view shows player "
                        f"{owner}'s private info {secret!r}:\n{views[p]}"
                    )
    return views


def _play(ref: str, seed: int, index: int) -> list[str]:
    """Random-play one match, checking every state; returns a trace for determinism."""
    game = make_game(ref)
    spec = game.spec
    rng = _match_rng(seed, index)
    state = game.new_initial_state(rng)
    trace: list[str] = []
    decisions = 0
    while True:
        _check_state(ref, state, decisions)
        trace += _check_privacy(ref, state, decisions)
        if state.is_terminal():
            break
        assert decisions < spec.max_length, f"{ref}: more than spec.max_length={spec.max_length} decisions"
        action = rng.choice(state.legal_actions())
        trace.append(f"{state.current_player()}:{action}:{state.action_name(action)}")
        before, before_legal = state.clone(), state.legal_actions()
        state.apply(action)
        assert before.legal_actions() == before_legal and before.current_player() == int(trace[-1].split(":")[0]), (
            f"{ref}: applying an action to a state changed its clone() as well"
        )
        decisions += 1
    returns = state.returns()
    assert len(returns) == spec.players, f"{ref}: returns {returns} has not {spec.players} entries"
    lo, hi = spec.utility_range
    assert all(lo - 1e-9 <= r <= hi + 1e-9 for r in returns), f"{ref}: returns {returns} outside {spec.utility_range}"
    if spec.zero_sum:
        assert abs(sum(returns)) < 1e-9, f"{ref}: zero-sum game but returns {returns} sum to {sum(returns)}"
    # Terminal is absorbing: asking again changes nothing.
    assert state.returns() == returns, f"{ref}: returns changed when read twice: {returns} then {state.returns()}"
    assert state.clone().returns() == returns, f"{ref}: a clone of the final state has other returns"
    trace.append(f"returns:{returns}")
    return trace


def check_game(game_ref: str, n_games: int = 50, seed: int = 0) -> None:
    """Random-play `n_games` seeded matches of `game_ref`; raise AssertionError with
    the broken invariant if any fails."""
    spec = make_game(game_ref).spec
    assert spec.players >= 1 and spec.max_length >= 1, f"{game_ref}: bad spec {spec}"
    assert spec.utility_range[0] <= spec.utility_range[1], f"{game_ref}: bad utility_range {spec.utility_range}"
    for index in range(n_games):
        trace = _play(game_ref, seed, index)
        if index < 3:  # determinism: the same seed gives the same actions and views
            again = _play(game_ref, seed, index)
            assert trace == again, f"{game_ref}: match {index} with seed {seed} differs when replayed"


def transcript(game_ref: str, seed: int) -> str:
    """A match of random legal moves from `random.Random(seed)`, every turn rendered:
    whose turn, that player's view, the chosen action; then final views and returns."""
    game = make_game(game_ref)
    spec = game.spec
    rng = random.Random(seed)
    state = game.new_initial_state(rng)
    out = [f"# {spec.ref} version {spec.version}, seed {seed}"]
    turn = 0
    while not state.is_terminal():
        turn += 1
        player = state.current_player()
        action = rng.choice(state.legal_actions())
        message = f"Turn {turn} from Player {player + 1}: let us agree." if spec.messages else None
        out += [f"\n=== turn {turn}: Player {player + 1} ===", state.view(player)]
        out.append(f">>> Player {player + 1} plays: {state.action_name(action)}")
        if message:
            out.append(f">>> Message: {message}")
        state.apply(action, message)
    for player in range(spec.players):
        out += [f"\n=== final view of Player {player + 1} ===", state.view(player)]
    out.append("\nreturns: " + ", ".join(f"Player {p + 1} {r:+g}" for p, r in enumerate(state.returns())))
    return "\n".join(out) + "\n"
