"""Run logging: metrics.jsonl, TensorBoard event files, Weights & Biases (optional) and PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

PLOTS = {
    "success.png": [
        ("rollout/success_rate", "train rollouts"),
        ("eval/success_rate", "eval"),
        ("eval/final_success_rate", "final eval"),  # eval.final_episodes, after the last step
    ],
    "entropy.png": [("actor/entropy", "policy entropy")],
    "tool_calls.png": [("rollout/tool_calls", "tool calls per episode")],
    "schedules.png": [("schedule/lambda_tool", "lambda_tool"), ("schedule/lambda_sil", "lambda_sil")],
}


class RunLogger:
    """Appends one JSON line per step to ``metrics.jsonl`` and mirrors scalars to TensorBoard
    and, when given a config with ``logging.wandb.enabled``, to Weights & Biases
    (:mod:`spear.trainer.tracking`)."""

    def __init__(
        self,
        run_dir: Path,
        *,
        tensorboard: bool = True,
        resume_step: int | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        if resume_step is not None:
            self._truncate_after(resume_step)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=resume_step)
        self.tracker = None
        if config is not None and config["logging"].get("wandb", {}).get("enabled"):
            from spear.trainer.tracking import WandbTracker

            self.tracker = WandbTracker(self.run_dir, config, resume=resume_step is not None)

    @classmethod
    def for_run(cls, run_dir: Path, config: dict[str, Any], *, resume_step: int | None = None) -> RunLogger:
        """The logger a run's ``logging`` section asks for."""
        return cls(
            run_dir, tensorboard=config["logging"]["tensorboard"], resume_step=resume_step, config=config
        )

    def _truncate_after(self, step: int) -> None:
        """On resume, drop lines the interrupted run wrote after its last checkpoint."""
        if not self.path.exists():
            return
        kept = [
            line for line in self.path.read_text().splitlines() if line and json.loads(line)["step"] <= step
        ]
        self.path.write_text("".join(line + "\n" for line in kept))

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        record = {"step": step, **{k: _clean(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and value is not None:
                    self.writer.add_scalar(key, value, step)
            self.writer.flush()
        if self.tracker is not None:
            self.tracker.log(step, record)

    def history(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.tracker is not None:
            self.tracker.close()


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _draw(ax: Any, history: list[dict[str, Any]], series: list[tuple[str, str]], title: str) -> bool:
    """Draw each ``(metric, label)`` of ``series`` against step on ``ax``; False if none was logged."""
    drawn = False
    for key, label in series:
        points = [(r["step"], r[key]) for r in history if r.get(key) is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o" if len(points) < 30 else None, markersize=3, label=label)
            drawn = True
    if drawn:
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_title(title)
    return drawn


def write_plots(history: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """PNG plots of success, entropy, tool calls and the two schedules against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, series in PLOTS.items():
        fig, ax = plt.subplots(figsize=(6, 3.6))
        if _draw(ax, history, series, filename[:-4].replace("_", " ")):
            fig.tight_layout()
            path = out_dir / filename
            fig.savefig(path, dpi=110)
            written.append(path)
        plt.close(fig)
    return written


def write_summary_plot(history: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Success, tool calls and entropy side by side in one PNG (the README's picture of a run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for ax, filename in zip(axes, ("success.png", "tool_calls.png", "entropy.png"), strict=True):
        _draw(ax, history, PLOTS[filename], filename[:-4].replace("_", " "))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
