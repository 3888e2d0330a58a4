import math

import pytest

from sparring.learn.evaluation import paired_change


def test_paired_change_by_hand():
    change = paired_change(before=[0, 1, 0, 1], after=[1, 1, 1, 1])
    # differences 1, 0, 1, 0: mean 0.5, sample sd sqrt(1/3), half-width 1.96 * sd / 2
    assert change["diff"] == 0.5
    assert change["diff_ci"] == pytest.approx(1.96 * math.sqrt(1 / 3) / 2)
    assert (change["before"], change["after"], change["after_ci"]) == (0.5, 1.0, 0.0)
