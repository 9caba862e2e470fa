"""SPEAR on engines users already run. Each integration calls :mod:`spear.algo` (through
:class:`spear.trainer.method.Method`) and never holds a second copy of a formula.

* :mod:`spear.integrations.trl`: TRL's ``GRPOTrainer`` (``pip install 'spear-rl[trl]'``).

``import spear`` imports none of them.
"""
