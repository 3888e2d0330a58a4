"""Advantage estimators against numbers computed by hand."""

import pytest

from sparring.learn.advantages import grpo_advantages, rae_advantages, rloo_advantages

P0, P1 = ("kuhn_poker", 0), ("kuhn_poker", 1)


def test_rae_sequence_of_batches_decay_one_half():
    # batch 1: P0 mean 0 -> b0 = 0; P1 mean 1 -> b1 = .5*0 + .5*1 = .5
    adv, b = rae_advantages([1, -1, 1], [P0, P0, P1], {}, decay=0.5)
    assert adv == pytest.approx([1, -1, 0.5])
    assert b == pytest.approx({P0: 0.0, P1: 0.5})
    # batch 2: b0 = .5*0 + .5*1 = .5; b1 = .5*.5 + .5*(-1) = -.25
    adv, b = rae_advantages([1, 1, -1], [P0, P0, P1], b, decay=0.5)
    assert adv == pytest.approx([0.5, 0.5, -0.75])
    assert b == pytest.approx({P0: 0.5, P1: -0.25})
    # batch 3 has no P1 turn: its baseline stays
    adv, b = rae_advantages([0], [P0], b, decay=0.5)
    assert adv == pytest.approx([-0.25]) and b == pytest.approx({P0: 0.25, P1: -0.25})


def test_rae_spiral_decay():
    baselines = {}
    adv, baselines = rae_advantages([1.0], [P1], baselines)  # b = .05
    assert adv == pytest.approx([0.95])
    adv, baselines = rae_advantages([-1.0], [P1], baselines)  # b = .95*.05 - .05 = -.0025
    assert adv == pytest.approx([-0.9975]) and baselines[P1] == pytest.approx(-0.0025)


def test_rae_does_not_mutate_its_input():
    before = {P0: 0.3}
    rae_advantages([1.0], [P0], before)
    assert before == {P0: 0.3}


def test_grpo_normalises_per_role():
    adv = grpo_advantages([1, -1, 1, 1], [P0, P0, P1, P1])
    assert adv == pytest.approx([1, -1, 0, 0], abs=1e-5)  # P1: all equal -> 0
    # mean 1, population std sqrt(2/3)
    assert grpo_advantages([2, 0, 1], [P0] * 3) == pytest.approx([1.224744, -1.224744, 0], abs=1e-5)


def test_rloo_leave_one_out():
    assert rloo_advantages([2, 0, 1], [P0] * 3) == pytest.approx([1.5, -1.5, 0])
    assert rloo_advantages([2, 5], [P0, P1]) == [0.0, 0.0]  # one sample per role: no baseline
