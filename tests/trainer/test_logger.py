"""The run's PNG plots: every series that was logged is drawn, the final evaluation
included, and the three-panel summary figure of scripts/plot_run.py."""

import importlib.util
import json
from pathlib import Path

import matplotlib.image
import pytest

from spear.trainer.logger import PLOTS, write_plots, write_summary_plot

HISTORY = [
    {"step": 0, "eval/success_rate": 0.25},
    *(
        {
            "step": s,
            "rollout/success_rate": 0.2 + 0.01 * s,
            "rollout/tool_calls": 10.0 + s,
            "actor/entropy": 0.1,
        }
        for s in range(1, 6)
    ),
    {"step": 5, "eval/final_success_rate": 0.34, "eval/final_score": 0.34},
]


def test_the_success_plot_draws_the_final_evaluation(tmp_path, monkeypatch):
    drawn = {}
    import matplotlib.axes

    original = matplotlib.axes.Axes.plot

    def spy(self, xs, ys, *args, label=None, **kwargs):
        drawn.setdefault(self.get_title() or "pending", []).append((label, list(xs), list(ys)))
        return original(self, xs, ys, *args, label=label, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    written = write_plots(HISTORY, tmp_path)
    assert {p.name for p in written} == {
        "success.png",
        "tool_calls.png",
        "entropy.png",
    }  # no schedules logged
    labels = {label: (xs, ys) for series in drawn.values() for label, xs, ys in series}
    assert labels["final eval"] == ([5], [0.34])
    assert labels["eval"] == ([0], [0.25]) and labels["train rollouts"][0] == [1, 2, 3, 4, 5]
    assert "eval/final_success_rate" in [key for key, _ in PLOTS["success.png"]]


def test_the_summary_figure_and_the_script_that_redraws_a_run(tmp_path):
    path = write_summary_plot(HISTORY, tmp_path / "img" / "run.png", "a title")
    height, width, _ = matplotlib.image.imread(path).shape
    assert width > 2.5 * height  # three panels side by side
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in HISTORY))
    script = Path(__file__).parents[2] / "scripts" / "plot_run.py"
    spec = importlib.util.spec_from_file_location("plot_run", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([str(run), "--summary", str(tmp_path / "summary.png")]) == 0
    assert (run / "plots" / "success.png").is_file() and (tmp_path / "summary.png").is_file()
    with pytest.raises(SystemExit):
        module.main([])
    assert module.main([str(tmp_path / "empty")]) == 2
