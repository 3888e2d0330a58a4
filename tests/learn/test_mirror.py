"""Mirror descent self-play over the whole tree: the closed-form step is the maximiser
of the MMD objective (checked against a numerical optimiser), the tabular iteration
reaches near-Nash play in Kuhn poker (OpenSpiel's exploitability), the stored run
resumes to the same iterations, and games it cannot serve are refused before any
compute."""

import numpy as np
import pytest
from open_spiel.python import policy as os_policy
from open_spiel.python.algorithms import exploitability
from open_spiel.python.algorithms.action_value import TreeWalkCalculator
from scipy.optimize import minimize

from sparring.cli.app import run as cli
from sparring.errors import SparringError
from sparring.learn.mirror import MirrorConfig, action_values, mmd_target, run_mirror
from sparring.store import RunStore


def test_the_step_maximises_the_regularised_objective():
    """eta <p, q> - eta alpha KL(p || magnet) - KL(p || policy) over the simplex,
    maximised by scipy from a softmax parametrisation, equals the closed form."""
    rng = np.random.default_rng(0)
    eta, alpha = 0.7, 0.3
    policy, magnet = rng.dirichlet(np.ones(3), size=4), rng.dirichlet(np.ones(3), size=4)
    q = rng.normal(size=(4, 3))
    legal = np.ones((4, 3))
    legal[1, 2] = 0  # an illegal action gets no probability
    policy[1] = [0.4, 0.6, 0.0]
    target = mmd_target(policy, q, magnet, legal, eta, alpha)
    for s in range(4):
        actions = np.flatnonzero(legal[s])

        def loss(z):
            p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            kl_magnet = (p * np.log(p / magnet[s, actions])).sum()
            kl_policy = (p * np.log(p / policy[s, actions])).sum()
            return -(eta * p @ q[s, actions] - eta * alpha * kl_magnet - kl_policy)

        best = minimize(loss, np.zeros(len(actions)), method="BFGS", options={"gtol": 1e-10})
        p = np.exp(best.x - best.x.max()) / np.exp(best.x - best.x.max()).sum()
        assert target[s, actions] == pytest.approx(p, abs=1e-5)
        assert target[s, np.flatnonzero(legal[s] == 0)].sum() == 0


def test_tabular_mirror_descent_reaches_near_nash_in_kuhn():
    """From a near-deterministic start (exploitability 0.32), 50 steps at the
    defaults come within 0.05 of Nash, as OpenSpiel measures it."""
    import pyspiel

    game = pyspiel.load_game("kuhn_poker")
    policy = os_policy.TabularPolicy(game)
    legal = policy.legal_actions_mask
    logits = np.where(legal > 0, np.random.default_rng(0).normal(0, 3, legal.shape), -np.inf)
    policy.action_probability_array[:] = np.exp(logits - logits.max(1, keepdims=True))
    policy.action_probability_array /= policy.action_probability_array.sum(1, keepdims=True)
    start = exploitability.exploitability(game, policy)
    magnet = legal / legal.sum(1, keepdims=True)
    calculator = TreeWalkCalculator(game)
    config = MirrorConfig(out="unused")
    for _ in range(50):
        q = action_values(calculator, policy)
        policy.action_probability_array[:] = mmd_target(policy.action_probability_array, q, magnet, legal,
                                                        config.step_size, config.magnet_coef)
    assert start > 0.3
    assert exploitability.exploitability(game, policy) < 0.05


def stored_curve(run_dir):
    store = RunStore(run_dir)
    try:
        return [(s["step"], s["exploitability"], s["target_kl"]) for s in store.train_steps()], store.exploitability()
    finally:
        store.close()


def test_a_stopped_run_resumes_to_the_same_iterations(tmp_path, tiny_model_dir):
    settings = {"model": str(tiny_model_dir), "lr": 0.02, "checkpoint_every": 2}
    run_mirror(MirrorConfig(iterations=4, out=str(tmp_path / "whole"), **settings))
    run_mirror(MirrorConfig(iterations=2, out=str(tmp_path / "parts"), **settings))
    with pytest.raises(SystemExit) as done:
        cli(["mirror", "--resume", str(tmp_path / "parts"), "--iterations", "4"])
    assert done.value.code == 0
    (whole, whole_entries), (parts, parts_entries) = stored_curve(tmp_path / "whole"), stored_curve(tmp_path / "parts")
    assert [s for s, _, _ in whole] == [0, 1, 2, 3]
    assert np.allclose(np.array(parts), np.array(whole), atol=1e-6), (parts, whole)
    assert whole[-1][1] != whole[0][1]  # the model moved
    final = [e for e in parts_entries if e.checkpoint == "policy"]
    assert final[-1].step == 4 and (tmp_path / "parts" / "policy" / "adapter_model.safetensors").exists()
    assert final[-1].exploitability == pytest.approx(
        [e for e in whole_entries if e.checkpoint == "policy"][-1].exploitability, abs=1e-4)


@pytest.mark.parametrize("game, why", [
    ("tictactoe", "imperfect-information"),
    ("openspiel:kuhn_poker(players=3)", "2-player zero-sum"),
])
def test_games_it_cannot_serve_are_refused_before_any_compute(tmp_path, game, why):
    with pytest.raises(SparringError, match=why):
        run_mirror(MirrorConfig(game=game, out=str(tmp_path / "m")))
    assert not (tmp_path / "m").exists()


def test_resume_takes_the_stored_settings_and_refuses_others(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli(["mirror", "--resume", str(tmp_path / "m"), "--lr", "0.1"])
    assert "only --iterations and --time-budget-s may be given with it, not --lr" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(SparringError, match="must be a positive number"):
        MirrorConfig(step_size=float("nan"), out="x")
