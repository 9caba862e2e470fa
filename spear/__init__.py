"""spear: multi-turn agentic RL with SPEAR (arXiv 2509.22601).

Layers, lowest first: ``spear.algo`` (pure PyTorch/NumPy mechanisms) <-
``spear.tools`` / ``spear.envs`` / ``spear.rollout`` <- ``spear.trainer`` and the CLI.
Lower layers never import higher ones.
"""

__version__ = "0.1.0"
