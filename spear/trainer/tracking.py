"""Weights & Biases tracking of a run (``logging.wandb``), next to metrics.jsonl and TensorBoard.

Off by default. With ``logging.wandb.enabled: true`` the resolved config goes to the
W&B run's config and every logged step's scalars to its history, under the same names
as in metrics.jsonl (``rollout/success_rate``, ``actor/entropy``, ...). ``mode: offline``
(the default) writes the run under ``<dir>/wandb/offline-run-*`` with no network; upload
it later with ``wandb sync``. A resumed run (``spear train --resume``) continues the same
W&B run: its id is kept in ``RUN_DIR/wandb_run_id``.
"""

from __future__ import annotations

import secrets
import string
from pathlib import Path
from typing import Any

from spear.trainer.config import WANDB_MISSING, ConfigError

RUN_ID_FILE = "wandb_run_id"


def _new_run_id() -> str:
    """A fresh W&B run id (8 lowercase letters and digits, as W&B makes them)."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise ConfigError(WANDB_MISSING) from None
    return wandb


class WandbTracker:
    """One W&B run mirroring a spear run.

    Args:
        run_dir: the spear run directory (holds the W&B id; the default ``dir``).
        config: the run's resolved config, sent as the W&B run's config.
        resume: a resumed spear run: continue the W&B run recorded in ``run_dir``.
    """

    def __init__(self, run_dir: Path, config: dict[str, Any], *, resume: bool = False) -> None:
        settings = config["logging"]["wandb"]
        wandb = _import_wandb()
        run_dir = Path(run_dir)
        id_file = run_dir / RUN_ID_FILE
        run_id = id_file.read_text().strip() if resume and id_file.is_file() else _new_run_id()
        directory = Path(settings["dir"]) if settings["dir"] else run_dir
        directory.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=settings["project"],
            entity=settings["entity"],
            name=settings["name"] or run_dir.name,
            tags=list(settings["tags"]),
            mode=settings["mode"],
            dir=str(directory),
            id=run_id,
            resume="allow",
            config=config,
            reinit="create_new",
        )
        id_file.write_text(run_id + "\n")

    def log(self, step: int, record: dict[str, Any]) -> None:
        """Log one step's numeric values (None and non-numbers are left out)."""
        scalars = {
            key: value
            for key, value in record.items()
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        self.run.log({**scalars, "trainer/step": step}, step=step)

    def close(self) -> None:
        self.run.finish()
