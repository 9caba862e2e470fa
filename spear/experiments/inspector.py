"""``spear inspect RUN_DIR``: one self-contained HTML file of what a run's agent did.

The page opens from disk with no server and no network: the styles, a few lines of
JavaScript (step filter, expand/collapse) and the curves (inline SVG drawn here) are all
inside it. It shows the training curves of ``metrics.jsonl``, the SIL buffer's story per
step and, for each step ``samples.jsonl`` recorded (:mod:`spear.trainer.samples`), a few
episodes turn by turn (docs/INSPECT.md).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import yaml

from spear.trainer.config import ConfigError
from spear.trainer.samples import read_samples

CURVES: list[tuple[str, list[tuple[str, str]]]] = [
    ("success rate", [("rollout/success_rate", "train rollouts"), ("eval/success_rate", "eval")]),
    ("shaped reward", [("rollout/shaped_reward", "mean per episode")]),
    ("policy entropy", [("actor/entropy", "on-policy"), ("sil/entropy", "replay")]),
    ("policy loss", [("actor/pg_loss", "on-policy"), ("sil/pg_loss", "replay")]),
    ("tool calls per episode", [("rollout/tool_calls", "tool calls")]),
    ("invalid actions", [("rollout/invalid_action_rate", "share of turns")]),
    ("schedules", [("schedule/lambda_tool", "lambda_tool"), ("schedule/lambda_sil", "lambda_sil")]),
    (
        "SIL buffer rows",
        [("sil/buffer_rows", "in buffer"), ("sil/stored_rows", "stored"), ("sil/replay_rows", "replayed")],
    ),
    ("SIL baseline (percentile)", [("sil/baseline", "baseline")]),
    ("seconds per step", [("time/step", "step"), ("time/rollout", "rollout"), ("time/update", "update")]),
]
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
WIDTH, HEIGHT, PAD = 360, 190, 38

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:16px;color:#222}
h1{font-size:22px;margin:4px 0} h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555} .grid{display:flex;flex-wrap:wrap;gap:10px}
.chart{border:1px solid #ddd;border-radius:6px;background:#fff}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top}
th{background:#f3f3f3} pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:12px;max-width:420px}
details.step{border:1px solid #ccc;border-radius:6px;margin:6px 0;padding:4px 8px}
details.step>summary{cursor:pointer;font-weight:600}
.won{color:#187a18;font-weight:600} .lost{color:#a33}
.flag{background:#fde2b5;border-radius:3px;padding:0 3px;margin-right:2px}
.masked{background:#f6d3d3} .invalid{color:#a33;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
.controls{margin:8px 0} .controls input{width:90px}
"""

SCRIPT = """
(function () {
  var steps = document.querySelectorAll('details.step');
  var episodes = document.querySelectorAll('table.episode').length;
  document.getElementById('js-status').textContent =
    steps.length + ' recorded steps, ' + episodes + ' episodes shown';
  document.getElementById('expand').addEventListener('click', function () {
    steps.forEach(function (d) { if (d.style.display !== 'none') { d.open = true; } });
  });
  document.getElementById('collapse').addEventListener('click', function () {
    steps.forEach(function (d) { d.open = false; });
  });
  document.getElementById('step-filter').addEventListener('input', function (e) {
    var want = e.target.value.trim();
    steps.forEach(function (d) {
      d.style.display = (want === '' || d.dataset.step === want) ? '' : 'none';
      if (want !== '' && d.dataset.step === want) { d.open = true; }
    });
  });
})();
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)
    return _esc(value)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ----------------------------------------------------------------------------- curves
def svg_chart(title: str, series: list[tuple[str, list[tuple[float, float]]]]) -> str:
    """A line chart of ``series`` (label, [(step, value)]) as an inline SVG element."""
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - (abs(y0) or 1) * 0.1, y1 + (abs(y1) or 1) * 0.1
    inner_w, inner_h = WIDTH - PAD - 10, HEIGHT - PAD - 24

    def px(x: float) -> float:
        return PAD + (x - x0) / (x1 - x0) * inner_w

    def py(y: float) -> float:
        return 24 + (1 - (y - y0) / (y1 - y0)) * inner_h

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{_esc(title)}">',
        f'<text x="{PAD}" y="15" font-size="13" font-weight="600">{_esc(title)}</text>',
        f'<line x1="{PAD}" y1="{24 + inner_h}" x2="{PAD + inner_w}" y2="{24 + inner_h}" stroke="#999"/>',
        f'<line x1="{PAD}" y1="24" x2="{PAD}" y2="{24 + inner_h}" stroke="#999"/>',
        f'<text x="{PAD - 4}" y="{24 + 4}" font-size="10" text-anchor="end">{y1:.3g}</text>',
        f'<text x="{PAD - 4}" y="{24 + inner_h}" font-size="10" text-anchor="end">{y0:.3g}</text>',
        f'<text x="{PAD}" y="{HEIGHT - 4}" font-size="10">step {x0:g}</text>',
        f'<text x="{PAD + inner_w}" y="{HEIGHT - 4}" font-size="10" text-anchor="end">{x1:g}</text>',
    ]
    for index, (label, points) in enumerate(series):
        color = COLORS[index % len(COLORS)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{coords}"/>')
        if len(points) <= 120:
            for x, y in points:
                parts.append(
                    f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.2" fill="{color}">'
                    f"<title>{_esc(label)} at step {x:g}: {y:.4g}</title></circle>"
                )
        legend_x = PAD + 6 + index * 110
        parts.append(f'<rect x="{legend_x}" y="{HEIGHT - 28}" width="10" height="3" fill="{color}"/>')
        parts.append(f'<text x="{legend_x + 14}" y="{HEIGHT - 24}" font-size="10">{_esc(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def curves(metrics: list[dict[str, Any]]) -> str:
    charts = []
    for title, keys in CURVES:
        series = []
        for key, label in keys:
            points = [
                (float(r["step"]), float(r[key]))
                for r in metrics
                if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])
            ]
            if points:
                series.append((label, points))
        if series:
            charts.append(svg_chart(title, series))
    return '<div class="grid">' + "".join(charts) + "</div>" if charts else "<p>no metrics logged yet</p>"


# ----------------------------------------------------------------------------- SIL story
def sil_table(samples: list[dict[str, Any]]) -> str:
    rows = []
    for record in samples:
        sil = record.get("sil") or {}
        summary = sil.get("advantage_summary") or {}
        baseline = sil.get("baseline")
        rows.append(
            "<tr>"
            f'<td class="num"><a href="#step-{record["step"]}">{record["step"]}</a></td>'
            f'<td class="num">{_fmt(sil.get("stored_rows"))}</td>'
            f'<td class="num">{_fmt(sil.get("buffer_rows"))}</td>'
            f'<td class="num">{_fmt(sil.get("qualifying_rows"))}</td>'
            f'<td class="num">{_fmt(sil.get("lambda_sil"))}</td>'
            f'<td class="num">{_fmt(sil.get("replayed_rows"))}</td>'
            f"<td>{_fmt(baseline[0]) if baseline else '–'}</td>"
            f"<td>{_fmt(baseline[1]) if baseline else '–'}</td>"
            f"<td>{_fmt(summary.get('min'))} / {_fmt(summary.get('mean'))} / {_fmt(summary.get('max'))}</td>"
            f"<td>{_esc(', '.join(map(str, sil.get('from_steps', []))))}</td>"
            "</tr>"
        )
    if not rows:
        return "<p>no samples recorded (logging.samples.every: 0, or a run made before spear inspect)</p>"
    head = (
        "<tr><th>step</th><th>rows stored</th><th>rows in buffer</th><th>qualifying</th><th>λ_sil</th>"
        "<th>rows replayed</th><th>baseline</th><th>baseline std</th>"
        "<th>recalibrated advantage min / mean / max</th><th>replayed from steps</th></tr>"
    )
    return f'<table class="sil">{head}{"".join(rows)}</table>'


# ----------------------------------------------------------------------------- episodes
def episode_table(episode: dict[str, Any]) -> str:
    outcome = '<span class="won">won</span>' if episode.get("won") else '<span class="lost">not won</span>'
    caption = (
        f"episode {_esc(episode.get('traj'))} (task seed {_esc(episode.get('seed'))}): {outcome}, "
        f"score {_fmt(episode.get('score'))}, env reward {_fmt(episode.get('env_reward'))}, "
        f"tool calls {_fmt(episode.get('tool_calls'))}"
    )
    head = (
        "<tr><th>turn</th><th>prompt (its end)</th><th>response</th><th>parsed action</th>"
        "<th>reward</th><th>advantage</th><th>filter flags</th><th>invalid</th></tr>"
    )
    rows = []
    for turn in episode.get("turns", []):
        flags = "".join(f'<span class="flag">{_esc(f)}</span>' for f in turn.get("flags", []))
        if turn.get("masked"):
            flags += '<span class="flag masked">masked</span>'
        invalid = '<span class="invalid">invalid</span>' if turn.get("invalid") else "ok"
        rows.append(
            f'<tr class="{"masked" if turn.get("masked") else ""}">'
            f'<td class="num">{_fmt(turn.get("turn"))}</td>'
            f"<td><details><summary>prompt</summary><pre>{_esc(turn.get('prompt'))}</pre></details></td>"
            f"<td><pre>{_esc(turn.get('response'))}</pre></td>"
            f"<td><pre>{_esc(turn.get('action')) if turn.get('action') is not None else '–'}</pre></td>"
            f'<td class="num">{_fmt(turn.get("reward"))}</td>'
            f'<td class="num">{_fmt(turn.get("advantage"))}</td>'
            f"<td>{flags or '–'} <small>{_esc(turn.get('finish'))}</small></td>"
            f"<td>{invalid}</td></tr>"
        )
    return f'<table class="episode"><caption>{caption}</caption>{head}{"".join(rows)}</table>'


def replay_examples(sil: dict[str, Any]) -> str:
    examples = sil.get("examples") or []
    if not examples:
        return ""
    rows = "".join(
        f'<tr><td class="num">{_fmt(e.get("step"))}</td><td class="num">{_fmt(e.get("reward"))}</td>'
        f'<td class="num">{_fmt(e.get("advantage"))}</td><td><pre>{_esc(e.get("response"))}</pre></td>'
        f"<td><pre>{_esc(e.get('action')) if e.get('action') is not None else '–'}</pre></td></tr>"
        for e in examples
    )
    values = ", ".join(f"{a:.3g}" for a in sil.get("advantages", []))
    return (
        f"<h4>replayed rows ({_fmt(sil.get('replayed_rows'))}; recalibrated advantages: {_esc(values)})</h4>"
        "<table><tr><th>collected at step</th><th>reward</th><th>recalibrated advantage</th>"
        f"<th>response</th><th>parsed action</th></tr>{rows}</table>"
    )


def step_section(record: dict[str, Any], *, open_: bool = False) -> str:
    sil = record.get("sil") or {}
    summary = (
        f"step {record['step']}: train success {_fmt(record.get('success_rate'))}, "
        f"{_fmt(record.get('rows'))} rows after the group filter, "
        f"SIL stored {_fmt(sil.get('stored_rows'))} / replayed {_fmt(sil.get('replayed_rows'))}"
    )
    episodes = "".join(episode_table(e) for e in record.get("episodes", []))
    return (
        f'<details class="step" id="step-{record["step"]}" data-step="{record["step"]}"'
        f"{' open' if open_ else ''}>"
        f"<summary>{summary}</summary>{episodes}{replay_examples(sil)}</details>"
    )


# ----------------------------------------------------------------------------- the page
def build_report(run_dir: str | Path) -> str:
    """The HTML page of ``run_dir`` (ConfigError when it holds no spear run)."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.jsonl").is_file() and not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir} is not a spear run directory (no metrics.jsonl or config.yaml)")
    config = (
        yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").is_file() else {}
    )
    metrics = _read_jsonl(run_dir / "metrics.jsonl")
    samples = read_samples(run_dir)
    env = (config.get("env") or {}).get("name", "?")
    logged = [r["step"] for r in metrics if r.get("step")]
    meta = (
        f"preset <b>{_esc(config.get('preset', '?'))}</b> on <b>{_esc(env)}</b>, "
        f"{len(set(logged))} of {_esc(config.get('steps', '?'))} steps logged, "
        f"seed {_esc(config.get('seed'))}; "
        f"{len(samples)} steps sampled ({_esc(run_dir / 'samples.jsonl')})"
    )
    # opened at first: the first step whose SIL update replayed rows (else the first step)
    first = next((r["step"] for r in samples if (r.get("sil") or {}).get("replayed_rows")), None)
    first = first if first is not None else (samples[0]["step"] if samples else None)
    steps = "".join(step_section(r, open_=r["step"] == first) for r in samples)
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>spear inspect: {_esc(run_dir.name)}</title><style>{STYLE}</style></head><body>"
        f"<h1>spear inspect: {_esc(run_dir.name)}</h1><p class=meta>{meta}</p>"
        '<p class=meta id="js-status">(the page script has not run)</p>'
        f"<h2>Training curves</h2>{curves(metrics)}"
        f"<h2>SIL replay buffer, step by step</h2>{sil_table(samples)}"
        "<h2>Episodes</h2><div class=controls>step: <input id=step-filter type=number min=1 "
        'placeholder="all"> <button id=expand type=button>expand all</button> '
        "<button id=collapse type=button>collapse all</button></div>"
        f"{steps or '<p>no samples recorded</p>'}"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the page (default ``RUN_DIR/inspect.html``) and return its path."""
    path = Path(out) if out is not None else Path(run_dir) / "inspect.html"
    text = build_report(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
