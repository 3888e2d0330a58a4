"""An evolution run against a model server on 127.0.0.1 that speaks the real chat
protocol: its players answer by their playbook (a player whose notes say to bet
bets, one with none passes), its critic and reviser by script. Kuhn poker's
arithmetic then says what must happen: always-bet wins every pair of deals against
always-pass (+1 in each seat: the passer folds to every bet), so a revision that
says "bet" is promoted after the sequential test's 12 straight wins."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "backends"))
from fake_openai_server import ok, running_fake_server

from sparring.agents.registry import AgentFactory
from sparring.errors import SparringError
from sparring.games.registry import make_game
from sparring.learn.evolve.run import EvolveConfig, run_evolution
from sparring.store import RunStore

BET_RULE = "RULE: when you hold any card | do bet | because the other player folds to bets | matches 1, 2, 999"


def scripted(revisions: list[str]):
    """The server's model: critic and reviser by script, players by playbook."""
    calls = {"critic": 0, "reviser": 0}

    def answer(messages):
        system, last = messages[0][1], messages[-1][1]
        if last.startswith("You coach"):
            calls["critic"] += 1
            return ok("What lost: passing every hand (matches 1, 2).\nWhat won: nothing.\nSuggestions:\n- bet more")
        if last.startswith("You keep the playbook"):
            calls["reviser"] += 1
            return ok(revisions[calls["reviser"] - 1])
        return ok("Answer: bet" if "do bet" in system.lower() or ", bet," in system else "Answer: pass")

    return answer, calls


def config(server, out, **overrides) -> EvolveConfig:
    model = f"openai(model=fake,base_url={server.base_url},api_key_env='',backoff_s=0.01)"
    return EvolveConfig(**{"game": "kuhn_poker", "agent": model, "generations": 2, "games": 8,
                           "transcripts": 3, "out": str(out), **overrides})


def test_a_revision_that_wins_is_promoted_and_one_without_rules_is_recorded(tmp_path):
    with running_fake_server() as server:
        server.responder, calls = scripted([BET_RULE, "Bet more, I think."])
        run_dir = run_evolution(config(server, tmp_path / "e1"))
        # RUN_DIR/best plays as the promoted version: its model reading its playbook.
        factory = AgentFactory(make_game("kuhn_poker"))
        best = factory.make(str(run_dir / "best"))
        factory.close()
        critic_prompts = [r.body["messages"][-1]["content"] for r in server.chat_requests()
                          if r.body["messages"][-1]["content"].startswith("You coach")]
    assert calls == {"critic": 2, "reviser": 2}
    store = RunStore(run_dir)
    first, second = store.generations()
    assert (first.parent, first.candidate, first.best, first.event) == (0, 1, 1, None)
    assert first.feedback.startswith("What lost") and first.revision == BET_RULE
    assert first.tokens_in > 0 and first.tokens_out > 0  # the server's own counts
    [v0, v1] = store.playbooks()
    assert (v0.notes, v1.parent, v1.generation) == ("", 0, 1)
    assert json.loads(v1.rules)[0]["evidence"] == [1, 2]  # match 999 does not exist
    [promotion] = store.promotions()
    assert (promotion.version, promotion.decision, promotion.wins, promotion.losses) == (1, "promote", 12, 0)
    assert (second.parent, second.candidate, second.best) == (1, None, 1)
    assert "holds no rule" in second.event
    # Generation 2 (no promotion, so its matches are the last 8) played the population:
    # v1 against random and against v0, half each.
    last = sorted(store.matches(), key=lambda m: m.index)[-8:]
    assert sorted(tuple(sorted(m.seats)) for m in last) == [("random", "v1")] * 4 + [("v0", "v1")] * 4
    # The critic saw the cards: Kuhn hides them until the end.
    assert all("Revealed at the end: Player 1: Your card:" in p for p in critic_prompts)
    store.close()
    assert "bet" in best.config.playbook and "because the other player folds to bets" in best.config.playbook


def test_bad_settings_are_refused_before_any_play(tmp_path):
    with running_fake_server() as server:
        with pytest.raises(SparringError, match="hides nothing from its players"):
            run_evolution(config(server, tmp_path / "a", game="tictactoe", reveal="yes"))
        with pytest.raises(SparringError, match="critic must be a language model"):
            run_evolution(config(server, tmp_path / "b", critic="random"))
        bad = tmp_path / "critic.txt"
        bad.write_text("Coach {game} please.")
        with pytest.raises(SparringError, match="lacks {player}"):
            run_evolution(config(server, tmp_path / "c", critic_prompt=str(bad)))
        assert server.chat_requests() == []


def test_a_budget_too_small_for_a_generation_is_refused_and_a_budget_stops_the_run_between_generations(tmp_path):
    with running_fake_server() as server:
        server.responder, _ = scripted([BET_RULE, "Bet more."] * 3)
        with pytest.raises(SparringError, match="a generation takes about .* more than the budget of 500"):
            run_evolution(config(server, tmp_path / "a", budget_tokens=500))
        assert not (tmp_path / "a").exists()  # refused before the run directory was made
        one = RunStore(run_evolution(config(server, tmp_path / "b", generations=1)))
        cost = one.generations()[0].tokens_in + one.generations()[0].tokens_out
        one.close()
        server.responder, _ = scripted([BET_RULE, "Bet more."] * 3)
        stopped = RunStore(run_evolution(config(server, tmp_path / "c", generations=3, budget_tokens=cost * 3 // 2)))
        assert len(stopped.generations()) == 1  # a second generation would have passed the budget
        stopped.close()


def test_a_critic_that_fails_stops_the_run_with_a_clear_message_and_a_resume_finishes_it(tmp_path):
    from fake_openai_server import status

    with running_fake_server() as server:
        answer, _ = scripted([BET_RULE])
        failing = [True]
        server.responder = lambda messages: (status(500) if failing[0] and messages[-1][1].startswith("You coach")
                                             else answer(messages))
        settings = config(server, tmp_path / "e", generations=1)
        with pytest.raises(SparringError, match="the critic's model gave no answer .*HTTP 500.* resume the run"):
            run_evolution(settings)
        store = RunStore(tmp_path / "e")
        assert store.generations() == [] and len(store.matches()) == 8  # the games played are kept meanwhile
        store.close()
        failing[0] = False
        run_evolution(EvolveConfig(**{**settings.__dict__, "out": "", "resume": str(tmp_path / "e")}))
    store = RunStore(tmp_path / "e")
    [generation] = store.generations()
    assert generation.candidate == 1 and store.promotions()[0].decision == "promote"
    store.close()


@pytest.mark.slow
def test_the_whole_loop_runs_offline_on_the_embedded_model(tmp_path):
    """Agent and critic the embedded 135M model: weak words, but every stage runs and
    is stored; whatever the reviser wrote, the generation says what came of it."""
    run_dir = run_evolution(EvolveConfig(game="kuhn_poker", agent="smollm2", generations=1, games=4, transcripts=2,
                                         critic_tokens=48, max_pairs=4, out=str(tmp_path / "e")))
    store = RunStore(run_dir)
    [generation] = store.generations()
    assert generation.feedback.strip() and generation.tokens_in > 500 and generation.tokens_out > 0
    if generation.candidate is None:  # the usual outcome: no line in the rule format
        assert "holds no rule" in generation.event and store.promotions() == []
    else:
        [promotion] = store.promotions()
        assert promotion.version == generation.candidate and promotion.decision in ("promote", "reject")
    assert len(store.matches()) >= 4 and (run_dir / "best" / "playbook.json").is_file()
    store.close()


def test_an_odd_number_of_games_still_pairs_the_promotion_matches(tmp_path):
    with running_fake_server() as server:
        server.responder, _ = scripted([BET_RULE])
        store = RunStore(run_evolution(config(server, tmp_path / "e", generations=1, games=7)))
    [promotion] = store.promotions()
    assert promotion.decision == "promote" and 7 not in store.finished_indices()  # pairs start at match 8
    store.close()


def test_a_resumed_run_may_go_further_but_not_change_what_it_is(tmp_path):
    with running_fake_server() as server:
        server.responder, _ = scripted([BET_RULE, "Bet more."])
        settings = config(server, tmp_path / "e", generations=1)
        run_evolution(settings)
        resumed = {**settings.__dict__, "out": "", "resume": str(tmp_path / "e")}
        with pytest.raises(SparringError, match=r"other settings \(games\)"):
            run_evolution(EvolveConfig(**{**resumed, "games": 10}))
        store = RunStore(run_evolution(EvolveConfig(**{**resumed, "generations": 2, "budget_tokens": 10**9})))
    assert [g.generation for g in store.generations()] == [1, 2]
    assert store.get_meta("evolve_config")["generations"] == 2  # a later resume goes as far
    store.close()
