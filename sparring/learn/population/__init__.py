"""Population self-play (PSRO) on tabular policies of small 2-player zero-sum games:
the exact meta-game (metagame.py), meta-solvers (metasolvers.py), oracles
(oracles.py) and the loop (psro.py); the mixture as one behaviour policy is
`sparring.eval.mixture`."""

from sparring.learn.population.metagame import MetaGame
from sparring.learn.population.metasolvers import META_SOLVERS, meta_solver
from sparring.learn.population.oracles import Oracle, exact_best_response
from sparring.learn.population.psro import PSRO, PSROIteration, run_psro

__all__ = [
    "META_SOLVERS",
    "PSRO",
    "MetaGame",
    "Oracle",
    "PSROIteration",
    "exact_best_response",
    "meta_solver",
    "run_psro",
]
