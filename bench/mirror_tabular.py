"""The ceiling of `sparring mirror`: magnetic mirror descent run on a tabular policy
(no model), from a random near-pure start, with the same step (`mmd_target`) and
action values (`action_values`) the model follows. Prints the exact exploitability
at a few iterations, so a setting can be chosen before spending model time.

    python bench/mirror_tabular.py                                       # Kuhn, the defaults
    python bench/mirror_tabular.py --seed 3 --iterations 40              # another start
    python bench/mirror_tabular.py --step-size 0.5 --magnet-coef 0.2 --magnet-every 0   # a fixed magnet
    python bench/mirror_tabular.py --game leduc_poker --step-size 0.2 --magnet-coef 0.5
"""

from __future__ import annotations

import argparse

import numpy as np
import pyspiel
from open_spiel.python import policy as os_policy
from open_spiel.python.algorithms import exploitability
from open_spiel.python.algorithms.action_value import TreeWalkCalculator

from sparring.learn.mirror import MirrorConfig, action_values, mmd_target, with_floor

REPORTED = (5, 10, 20, 40, 50, 100, 200)


def main() -> None:
    defaults = MirrorConfig(out="unused")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="kuhn_poker")
    parser.add_argument("--step-size", type=float, default=defaults.step_size)
    parser.add_argument("--magnet-coef", type=float, default=defaults.magnet_coef)
    parser.add_argument("--magnet-every", type=int, default=defaults.magnet_every)
    parser.add_argument("--floor", type=float, default=defaults.floor)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    game = pyspiel.load_game(args.game)
    policy = os_policy.TabularPolicy(game)
    legal = policy.legal_actions_mask
    logits = np.where(legal > 0, np.random.default_rng(args.seed).normal(0, 3, legal.shape), -np.inf)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    policy.action_probability_array[:] = probs / probs.sum(axis=1, keepdims=True)
    magnet = legal / legal.sum(axis=1, keepdims=True)
    calculator = TreeWalkCalculator(game)
    print(f"{args.game}: step size {args.step_size}, magnet coefficient {args.magnet_coef}, "
          f"magnet moved every {args.magnet_every or 'never'}, floor {args.floor}")
    print(f"  iteration 0: exploitability {exploitability.exploitability(game, policy):.4f}")
    for t in range(1, args.iterations + 1):
        target = mmd_target(policy.action_probability_array, action_values(calculator, policy), magnet, legal,
                            args.step_size, args.magnet_coef)
        policy.action_probability_array[:] = with_floor(target, legal, args.floor)
        if args.magnet_every and t % args.magnet_every == 0:
            magnet = policy.action_probability_array.copy()
        if t in REPORTED or t == args.iterations:
            print(f"  iteration {t}: exploitability {exploitability.exploitability(game, policy):.4f}")


if __name__ == "__main__":
    main()
