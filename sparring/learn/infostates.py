"""Every information state of a small game as a training sample, and the KL of a
policy to a target table there: what distillation and mirror descent over the whole
game tree train on.

The adapter is shown each state's view exactly as in play (the scored LLM agent's
prompt and its answers' tokens, from the backend's own `score`); its policy there is
the softmax over the legal answers' log-likelihoods at the agent's temperature
(`sparring.learn.loss.option_log_policies`).
"""

from __future__ import annotations

import torch

from sparring.agents.llm import LLMAgent, answer_text
from sparring.backends.base import ScoreRequest
from sparring.eval.exploitability import InfoState, information_states, state_decision
from sparring.games.core import legal_action_names
from sparring.learn.rollout import Sample


def info_state_samples(game, agent: LLMAgent) -> list[tuple[InfoState, Sample]]:
    """(information state, sample) for every information state of `game`: the
    prompt and every legal answer's tokens as the agent's backend scores them."""
    infos = information_states(game)
    requests = []
    for info in infos:
        decision = state_decision(info, 0, 0)
        names = legal_action_names(info.state)
        options = tuple(answer_text(info.state.spec.answer_format, name) for name in names)
        requests.append(ScoreRequest(messages=agent.messages(decision), options=options))
    out = []
    for info, scored in zip(infos, agent.backend.score(requests)):
        sample = Sample(prompt_ids=tuple(scored[0].prompt_token_ids), completion_ids=(), behaviour_logprobs=(),
                        temperature=agent.config.temperature, role=(game.spec.id, info.player), reward=0.0,
                        options=tuple(tuple(o.token_ids) for o in scored))
        out.append((info, sample))
    return out


def kl_to_target(target: torch.Tensor, log_pi: torch.Tensor) -> torch.Tensor:
    """KL(target || pi) over one state's answers; 0 * log 0 counts as 0."""
    mask = target > 0
    return (target[mask] * (torch.log(target[mask]) - log_pi[mask])).sum() if mask.any() else log_pi.sum() * 0
