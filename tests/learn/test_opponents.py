"""The opponent pool: PFSP weights by hand, records that decay and survive a save."""

import random

import pytest

from sparring.errors import SparringError
from sparring.learn.opponents import RECORD_DECAY, OpponentMix, pfsp_weights


def test_pfsp_weights_by_hand():
    # (score, games) -> p = (score + 1) / (games + 2) -> f = (1 - p)^2:
    # (3, 4): p = 2/3, f = 1/9;  unplayed: p = 1/2, f = 1/4;  (0.5, 2): p = 3/8, f = 25/64
    total = 1 / 9 + 1 / 4 + 25 / 64
    assert pfsp_weights([(3, 4), (0, 0), (0.5, 2)]) == pytest.approx([1 / 9 / total, 1 / 4 / total, 25 / 64 / total])
    # the policy's hardest opponent is drawn most
    assert pfsp_weights([(10, 10), (0, 10)])[1] > 0.99


def test_pfsp_draws_the_checkpoints_the_policy_loses_to():
    mix = OpponentMix(("pool",), (1.0,), pool_size=2, pool_sampling="pfsp")
    mix.add_checkpoint("checkpoints/step-1")
    mix.add_checkpoint("checkpoints/step-2")
    mix.record("checkpoints/step-1", score=4.0, games=4)  # p = 5/6, f = 1/36; step-2 unplayed: f = 1/4
    rng = random.Random(0)
    picks = [mix.pick_checkpoint("pool", rng) for _ in range(4000)]
    assert picks.count("checkpoints/step-2") / len(picks) == pytest.approx((1 / 4) / (1 / 4 + 1 / 36), abs=0.02)
    assert mix.pick_checkpoint("latest", rng) == "checkpoints/step-2"
    uniform = OpponentMix(("pool",), (1.0,), pool_size=2, checkpoints=list(mix.checkpoints), records=dict(mix.records))
    picks = [uniform.pick_checkpoint("pool", rng) for _ in range(4000)]
    assert picks.count("checkpoints/step-2") / len(picks) == pytest.approx(0.5, abs=0.03)


def test_records_decay_survive_a_save_and_leave_with_their_checkpoint():
    mix = OpponentMix(("pool",), (1.0,), pool_size=2, pool_sampling="pfsp")
    mix.add_checkpoint("a")
    mix.record("a", score=4.0, games=4)
    mix.record("a", score=0.0, games=2)
    assert mix.records["a"] == pytest.approx([RECORD_DECAY * 4, RECORD_DECAY * 4 + 2])
    assert mix.win_rates() == pytest.approx({"a": 0.9 * 4 / (0.9 * 4 + 2)})
    copy = OpponentMix(("pool",), (1.0,), pool_size=2, pool_sampling="pfsp")
    copy.load_state_dict(mix.state_dict())
    assert copy.records == mix.records and copy.checkpoints == ["a"]
    mix.add_checkpoint("b")
    mix.add_checkpoint("c")  # "a" leaves the pool of 2
    assert mix.checkpoints == ["b", "c"] and mix.records == {}
    copy.load_state_dict({"checkpoints": ["a"]})  # a checkpoint of a run from before records
    assert copy.records == {}
    with pytest.raises(SparringError, match="pool_sampling 'best' unknown"):
        OpponentMix(("pool",), (1.0,), pool_sampling="best")
