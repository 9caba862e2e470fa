"""What one training run needs: config and presets, the loop of spec 2.2 (``loop``), the
method (``method``) and policy update (``actor``), cold start (``sft``), checkpoints,
evaluation, logging and tracking, and the recipes behind ``spear train`` (``run``).

Studying runs after the fact (sweeps, tables, statistics, the inspector) lives one floor
up, in :mod:`spear.experiments`, which this package never imports.
"""
