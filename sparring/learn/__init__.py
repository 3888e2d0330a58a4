"""Learning: self-play RL for local models (config, rollout, loss, trainer,
checkpoint), opponent mixes, advantage estimators, evaluation against fixed
references, and population self-play (population/)."""

from sparring.learn.config import TrainConfig
from sparring.learn.trainer import Trainer, train

__all__ = ["TrainConfig", "Trainer", "train"]
