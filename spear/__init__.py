"""spear: multi-turn agentic RL with SPEAR (arXiv 2509.22601).

Layers, lowest first: ``spear.algo`` (pure PyTorch/NumPy mechanisms) <-
``spear.tools`` / ``spear.envs`` / ``spear.models`` / ``spear.rollout`` <- ``spear.trainer``
(one training run) <- ``spear.experiments`` (sweeps, results, statistics, the inspector),
``spear.integrations`` and the CLI. Lower layers never import higher ones.
"""

__version__ = "0.4.0"
