"""Training LLM agents on moral rewards: the paper's PPO (LoRA + value head + adaptive KL) as a readable loop.

>>> from moralgym.training import TrainingConfig
>>> TrainingConfig(num_episodes=10, reward="utilitarian").batch_size
5

``moralgym train --config configs/quickstart.yaml`` runs :func:`main`. Importing this package loads no torch; the
trainer (:class:`~moralgym.training.ppo.MoralPPOTrainer`) does when used.
"""

from moralgym.training.config import TrainingConfig

__all__ = ["MoralPPOTrainer", "TrainingConfig", "main", "run"]


def __getattr__(name: str):
    if name == "MoralPPOTrainer":
        from moralgym.training.ppo import MoralPPOTrainer

        return MoralPPOTrainer
    if name == "run":
        from moralgym.training.cli import run

        return run
    raise AttributeError(f"module 'moralgym.training' has no attribute {name!r}")


def main(argv=None) -> int:
    """``moralgym train``; see :mod:`moralgym.training.cli`."""
    from moralgym.training.cli import main as cli_main

    return cli_main(argv)
