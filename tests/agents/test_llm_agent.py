"""The LLM agent's prompts."""

import random

from sparring.agents.base import Decision
from sparring.agents.llm import LLMAgent
from sparring.backends.hf import HFBackend, HFConfig
from sparring.games.registry import make_game


def test_a_retry_is_the_rejected_answer_as_the_models_turn_then_the_correction(tiny_model_dir):
    agent = LLMAgent(HFBackend(HFConfig(path=str(tiny_model_dir), dtype="float32")))
    state = make_game("tictactoe").new_initial_state(random.Random(0))
    first = agent.messages(Decision(state, 0, random.Random(0), 0))
    rejected = (("I take the middle", "it names no legal move (legal: 1, 2, 3, 4, 5, 6, 7, 8, 9)"), ("Five", "empty answer"))
    retry = agent.messages(Decision(state, 0, random.Random(0), 0, rejected=rejected, attempt=2))
    assert [role for role, _ in first] == ["system", "user"]
    assert retry == first + (
        ("assistant", "I take the middle"),
        ("user", "That answer was rejected: it names no legal move (legal: 1, 2, 3, 4, 5, 6, 7, 8, 9). Try again."),
        ("assistant", "Five"),
        ("user", "That answer was rejected: empty answer. Try again."),
    )
