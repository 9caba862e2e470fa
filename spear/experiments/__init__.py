"""Experiments on top of the trainer: what studies runs rather than trains one.

- :mod:`~spear.experiments.sweep`: a sweep directory's layout (``sweep.json``, runs, plots);
- :mod:`~spear.experiments.compare`: ``spear compare``, presets x seeds, resumable;
- :mod:`~spear.experiments.report`: per-run summaries, the results tables and overlay plots;
- :mod:`~spear.experiments.evidence`: paired statistics across seeds and episodes;
- :mod:`~spear.experiments.inspector`: ``spear inspect``, the HTML report of one run;
- :mod:`~spear.experiments.starting_policy`: the builder of the shipped starting policies.

Layer rule: this package may import :mod:`spear.trainer`; the trainer never imports it.
"""
