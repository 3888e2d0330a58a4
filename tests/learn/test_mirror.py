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
from sparring.eval.report import write_report
from sparring.learn.mirror import MirrorConfig, action_values, mmd_target, run_mirror, with_floor
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
    """From a near-deterministic start (exploitability 0.32), 40 steps at the
    defaults come within 0.01 of Nash, as OpenSpiel measures it."""
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
    for t in range(1, 41):
        q = action_values(calculator, policy)
        target = mmd_target(policy.action_probability_array, q, magnet, legal, config.step_size, config.magnet_coef)
        policy.action_probability_array[:] = with_floor(target, legal, config.floor)
        if t % config.magnet_every == 0:
            magnet = policy.action_probability_array.copy()
    assert start > 0.3
    assert exploitability.exploitability(game, policy) < 0.01


def stored_curve(run_dir):
    store = RunStore(run_dir)
    try:
        return [(s["step"], s["exploitability"], s["target_kl"]) for s in store.train_steps()], store.exploitability()
    finally:
        store.close()


@pytest.mark.parametrize("fit", ["gauss_newton", "adam"])
def test_a_stopped_run_resumes_to_the_same_iterations(tmp_path, tiny_model_dir, fit):
    settings = {"model": str(tiny_model_dir), "fit": fit, "lr": 0.02, "checkpoint_every": 2}
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
    _, md = write_report(tmp_path / "parts")
    assert "## Mirror descent over the whole game tree" in md.read_text()
    assert f"up to 2 {fit.replace('_', '-')} step(s) per iteration" in md.read_text()
    assert (tmp_path / "parts" / "curves.png").stat().st_size > 10_000  # the exploitability curve, drawn


def test_a_run_stored_before_the_fit_settings_resumes_as_it_ran(tmp_path, tiny_model_dir):
    earlier = {"model": str(tiny_model_dir), "fit": "adam", "fit_tolerance": 0.0, "floor": 0.0, "fit_steps": 1}
    run_mirror(MirrorConfig(iterations=1, out=str(tmp_path / "m"), checkpoint_every=1, **earlier))
    store = RunStore(tmp_path / "m")
    stored = store.get_meta("mirror_config")
    store.set_meta("mirror_config", {k: v for k, v in stored.items() if k not in ("fit", "fit_tolerance", "floor")})
    store.close()
    with pytest.raises(SystemExit) as done:
        cli(["mirror", "--resume", str(tmp_path / "m"), "--iterations", "2"])
    assert done.value.code == 0
    assert [s for s, _, _ in stored_curve(tmp_path / "m")[0]] == [0, 1]


@pytest.mark.parametrize("game, fit, why", [
    ("tictactoe", "gauss_newton", "imperfect-information"),
    ("openspiel:kuhn_poker(players=3)", "gauss_newton", "2-player zero-sum"),
    ("leduc_poker", "gauss_newton", "leduc_poker has 1248 answer gaps to fit.*use --fit adam"),
])
def test_games_it_cannot_serve_are_refused_before_any_compute(tmp_path, game, fit, why):
    with pytest.raises(SparringError, match=why):
        run_mirror(MirrorConfig(game=game, fit=fit, out=str(tmp_path / "m")))
    assert not (tmp_path / "m").exists()


def test_resume_takes_the_stored_settings_and_refuses_others(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli(["mirror", "--resume", str(tmp_path / "m"), "--lr", "0.1"])
    assert "only --iterations and --time-budget-s may be given with it, not --lr" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(SparringError, match="must be a positive number"):
        MirrorConfig(step_size=float("nan"), out="x")
