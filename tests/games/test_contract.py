"""check_game over every registered game and a few OpenSpiel refs, plus proof that
check_game catches the faults it claims to catch."""

from __future__ import annotations

import pytest

from sparring.games import kuhn_poker, matrix
from sparring.games.check import check_game
from sparring.games.registry import game_ids

EXTRA_REFS = [
    "openspiel:goofspiel(num_cards=4)",
    "openspiel:kuhn_poker",
    "openspiel:leduc_poker",
    "openspiel:tic_tac_toe",
    "liars_dice(numdice=2)",
    "matrix(preset=stag_hunt,rounds=3)",
    "matrix(preset=battle_of_the_sexes,rounds=1)",
    "bargaining(counts=[1,2,3],max_turns=4)",
]


@pytest.mark.parametrize("ref", game_ids() + EXTRA_REFS)
def test_contract(ref):
    check_game(ref, n_games=50, seed=0)


def test_check_game_catches_a_leaked_card(monkeypatch):
    honest = kuhn_poker.KuhnPokerState.view

    def leaky(self, player):
        return honest(self, player) + "\n" + self.card_line(1 - player)

    monkeypatch.setattr(kuhn_poker.KuhnPokerState, "view", leaky)
    with pytest.raises(AssertionError, match="private info"):
        check_game("kuhn_poker", n_games=5)


def test_check_game_catches_returns_out_of_range(monkeypatch):
    monkeypatch.setattr(matrix.MatrixState, "returns", lambda self: [100.0, 0.0] if self.is_terminal() else [0.0, 0.0])
    with pytest.raises(AssertionError, match="outside"):
        check_game("matrix", n_games=2)


def test_check_game_catches_a_shown_pending_choice(monkeypatch):
    honest = matrix.MatrixState.view
    monkeypatch.setattr(
        matrix.MatrixState, "view", lambda self, p: honest(self, p) + ("\n" + self._pending_line() if self.pending is not None else "")
    )
    with pytest.raises(AssertionError, match="private info"):
        check_game("matrix", n_games=2)


@pytest.mark.parametrize("game_id", game_ids())
def test_module_spec_is_the_default_instance_spec(game_id):
    from sparring.games.registry import make_game, spec_of

    assert make_game(game_id).spec == spec_of(game_id)


@pytest.mark.parametrize("game_id", game_ids())
def test_only_the_mover_is_asked_for_an_answer(game_id):
    import random

    from sparring.games.registry import make_game

    rng = random.Random(3)
    state = make_game(game_id).new_initial_state(rng)
    while not state.is_terminal():
        mover = state.current_player()
        view = state.view(mover)
        assert "Answer with one line" in view
        if not state.spec.messages:  # bargaining describes proposals by form, not one by one
            for a in state.legal_actions():
                assert state.action_name(a) in view
        for other in range(state.spec.players):
            if other != mover:
                assert "Answer with one line" not in state.view(other)
        state.apply(rng.choice(state.legal_actions()))
    assert all("Answer with one line" not in state.view(p) for p in range(state.spec.players))
