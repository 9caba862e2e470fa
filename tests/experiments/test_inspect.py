"""`spear inspect`: what the trainer records (samples.jsonl) and the HTML page, checked in a real
headless Chromium (Debian's package; scripts/setup.sh installs it when run as root)."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from micro import make_trainer

from spear.cli import main
from spear.experiments.inspector import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MAX_CHARS = 120


@pytest.fixture(scope="module")
def run_dir(base_model, tmp_path_factory):
    """A 4-step micro run on 'parity' (its SIL buffer fires from step 2) that records samples."""
    path = tmp_path_factory.mktemp("inspect") / "run"
    trainer = make_trainer(
        base_model,
        path,
        "env.name=parity",
        "env.options={}",
        "eval.final_episodes=0",
        "checkpoint.every=0",
        "logging.plots=false",
        "logging.tensorboard=false",
        "logging.samples.episodes=2",
        f"logging.samples.max_chars={MAX_CHARS}",
    )
    trainer.fit(progress=False)
    return path


def test_samples_are_bounded_and_tell_the_sil_story(run_dir):
    records = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    for record in records:
        assert 1 <= len(record["episodes"]) <= 2
        for turn in (t for e in record["episodes"] for t in e["turns"]):
            assert len(turn["prompt"]) <= MAX_CHARS and len(turn["response"]) <= MAX_CHARS
            assert isinstance(turn["invalid"], bool) and isinstance(turn["flags"], list)
            assert turn["advantage"] is not None or turn["masked"]
    replayed = [r["sil"] for r in records if r["sil"]["replayed_rows"]]
    assert replayed, "the parity run's buffer fires"
    for sil in replayed:
        assert len(sil["baseline"]) == 2 and len(sil["advantages"]) == min(sil["replayed_rows"], 64)
        assert max(sil["from_steps"]) < max(r["step"] for r in records)
        assert sil["examples"] and len(sil["examples"]) <= 2
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all("time/samples" in m for m in metrics if m["step"] >= 1 and "rollout/rows" in m)


def test_the_report_holds_every_step_the_sil_table_and_the_curves(run_dir, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["inspect", str(run_dir), "--out", str(out)]) == 0
    page = out.read_bytes().decode("utf-8")
    assert page == build_report(run_dir)
    for step in (1, 2, 3, 4):
        assert f'id="step-{step}"' in page
    assert page.count('<table class="episode">') >= 4
    assert "recalibrated advantage" in page and "<polyline" in page
    # self-contained: no external scripts, styles, images or fonts
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<link" not in page
    assert main(["inspect", str(tmp_path / "nowhere")]) == 2
    assert "is not a spear run directory" in capsys.readouterr().err


def _chromium(*args: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def console_messages(stderr: str) -> list[str]:
    """What the page wrote to the console (errors, uncaught exceptions, failed loads)."""
    return [line for line in stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh installs it as root)"
)
def test_the_report_loads_in_headless_chromium_without_console_errors(run_dir, tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>throw new Error('boom')</script></body></html>")
    assert any("boom" in m for m in console_messages(_chromium("--dump-dom", url=broken.as_uri()).stderr))

    page = tmp_path / "inspect.html"
    assert main(["inspect", str(run_dir), "--out", str(page)]) == 0
    dom = _chromium("--dump-dom", url=page.as_uri())
    assert console_messages(dom.stderr) == []
    assert "4 recorded steps" in dom.stdout  # the page's script ran

    shot = tmp_path / "shot.png"
    result = _chromium("--window-size=1280,1600", f"--screenshot={shot}", url=page.as_uri())
    assert console_messages(result.stderr) == []
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    not_white = (pixels < 240).any(axis=1).mean()
    colours = len(np.unique(pixels[::7], axis=0))
    assert not_white > 0.03 and colours > 50, (not_white, colours)
