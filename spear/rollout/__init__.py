"""Multi-turn rollouts: batched KV-cache sampling, prompt templates and the rollout engine.

See docs/ROLLOUT.md. Entry points: :class:`RolloutEngine`, :class:`RolloutConfig`,
:class:`RolloutBatch` and the low-level :func:`generate`.
"""

from spear.rollout.batch import RolloutBatch, TrajectoryRecord
from spear.rollout.config import RolloutConfig
from spear.rollout.engine import RolloutEngine
from spear.rollout.generation import Generation, generate

__all__ = ["Generation", "RolloutBatch", "RolloutConfig", "RolloutEngine", "TrajectoryRecord", "generate"]
