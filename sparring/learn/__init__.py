"""Learning: self-play RL for local models (rl.py), opponent mixes (opponents.py),
advantage estimators (advantages.py), evaluation against fixed references."""

from sparring.learn.rl import TrainConfig, read_train_log, train

__all__ = ["TrainConfig", "read_train_log", "train"]
