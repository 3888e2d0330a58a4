"""A mixture of agents as one agent: at the start of each match every seat it holds
draws one member, with the mixture's weights, and that member plays the seat to the
end. This is how PSRO plays a population's meta-strategy (Lanctot et al. 2017); it
is the same strategy as the reach-weighted behaviour policy
(`sparring.eval.mixture.mixture_policy`), which is how its exploitability is measured.

The draw depends only on the match's seed and the seat, so a replayed or resumed
match draws the same member. A member's decisions from all matches of a tick go to
it in one call; language-model members that are LoRA adapters of one base model
share one loaded model (`HFBackend.add_adapter`) through an `AdapterView` each.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from sparring.agents.base import Agent, Decision
from sparring.errors import SparringError
from sparring.records import Choice


class MixtureAgent:
    def __init__(self, members: Sequence[Agent], weights: Sequence[float], labels: Sequence[str]):
        if not members or len(weights) != len(members) or len(labels) != len(members):
            raise SparringError(f"a mixture needs one weight and one label per member: {len(members)} members, "
                                f"{len(weights)} weights, {len(labels)} labels")
        if any(not w >= 0 for w in weights) or sum(weights) <= 0:
            raise SparringError(f"mixture weights must be non-negative and not all 0, got {list(weights)}")
        self.members, self.labels = list(members), list(labels)
        self.weights = [w / sum(weights) for w in weights]
        self.name = "mixture"
        self.wants_batches = any(getattr(m, "wants_batches", False) for m in members)

    def member_for(self, match_seed: int, player: int) -> int:
        """The member that plays seat `player` of the match with seed `match_seed`."""
        draw = random.Random(f"mixture/{match_seed}/{player}")
        return draw.choices(range(len(self.members)), weights=self.weights)[0]

    def act(self, decisions: list[Decision]) -> list[Choice]:
        groups: dict[int, list[int]] = {}
        for i, decision in enumerate(decisions):
            groups.setdefault(self.member_for(decision.match_seed, decision.player), []).append(i)
        choices: list[Choice | None] = [None] * len(decisions)
        for k, indices in groups.items():
            for i, choice in zip(indices, self.members[k].act([decisions[i] for i in indices])):
                choices[i] = choice
        return choices

    def close(self) -> None:
        for member in self.members:
            close = getattr(member, "close", None)
            if close is not None:
                close()
