"""Bad game references raise SparringError with text that says what to do."""

from __future__ import annotations

import pytest

from sparring.errors import SparringError
from sparring.games.registry import make_game


@pytest.mark.parametrize(
    "ref, words",
    [
        ("nonexistent", ["unknown game 'nonexistent'", "kuhn_poker", "openspiel:"]),
        ("openspiel:nonexistent", ["unknown OpenSpiel game 'nonexistent'", "pyspiel.registered_names()"]),
        ("openspiel:kuhn_pokr", ["Similar names", "kuhn_poker"]),
        ("openspiel:goofspiel(bogus=3)", ["bogus", "num_cards", "goofspiel(key=value"]),
        ("openspiel:goofspiel(num_cards=x)", ["num_cards", "Parameters of goofspiel"]),
        ("tictactoe(size=4)", ["bad parameters for tictactoe", "size"]),
        ("liars_dice(numdice=0)", ["numdice must be"]),
        ("matrix(preset=foo)", ["unknown preset 'foo'", "stag_hunt"]),
        ("matrix(rounds=0)", ["rounds must be"]),
        ("matrix(payoffs=[[1,2]])", ["4 pairs"]),
        ("matrix(actions=[a,a])", ["two different single words"]),
        ("kuhn_poker@9", ["version 9"]),
    ],
)
def test_bad_ref_is_a_helpful_sparring_error(ref, words):
    with pytest.raises(SparringError) as info:
        make_game(ref)
    for word in words:
        assert word in str(info.value), f"{word!r} not in: {info.value}"


def test_params_are_recorded_in_the_ref():
    assert make_game("matrix(preset=stag_hunt,rounds=3)").spec.ref == "matrix(preset=stag_hunt,rounds=3)"
    assert make_game("matrix(preset=stag_hunt,rounds=5)").spec.ref == "matrix(preset=stag_hunt)"  # 5 is the default
    assert make_game("matrix").spec.ref == "matrix"
    assert make_game("liars_dice(numdice=2)").spec.ref == "liars_dice(numdice=2)"
    assert make_game("openspiel:goofspiel(num_cards=4)").spec.params == (("num_cards", 4),)


@pytest.mark.parametrize(
    "ref",
    [
        "matrix(payoffs=[[2,2],[0,3],[3,0],[1,1]],actions=[share,grab],rounds=2)",
        "bargaining(counts=[1,2,3],values=[[4,0,2],[1,3,1]],max_turns=4)",
        "liars_dice(numdice=2)",
        "openspiel:goofspiel(num_cards=4,points_order=descending)",
    ],
)
def test_spec_ref_round_trips(ref):
    spec = make_game(ref).spec
    assert make_game(spec.ref).spec == spec


def test_the_versioned_reference_a_run_stores_builds_the_same_game():
    from sparring.games.registry import make_game, split_version

    for ref in ("kuhn_poker", "matrix(preset=stag_hunt,rounds=3)", "openspiel:goofspiel(num_cards=4)"):
        spec = make_game(ref).spec
        assert make_game(spec.versioned_ref).spec == spec
    assert split_version("matrix@1(rounds=3)") == ("matrix(rounds=3)", 1)
    assert split_version("matrix(rounds=3)@1") == ("matrix(rounds=3)", 1)
    assert split_version("tictactoe") == ("tictactoe", None)
