"""What a finished sweep says about the paper's claims (spec 5, 6): paired gains and diagnostics.

Runs of one sweep with the same seed start from the same cold-start weights and
draw the same task seeds, so the gain of a method over its base is measured per seed
(``method - base``) and then averaged; the seed-to-seed spread of the difference is
the honest error bar. Every evaluation of a sweep also plays the same held-out episodes,
so two of them can be compared episode by episode as well, pooling the seeds' episodes
(:func:`pooled_episodes_table`).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from spear.experiments.report import mean_std, metric_series
from spear.trainer.evaluate import PairedGain, concat_outcomes, paired_gain

# (method, base) pairs of the paper's tables, and a labelled variant of one against its base
PAIRS = (
    ("spear", "drbot"),
    ("spear", "grpo"),
    ("grpo+spear", "grpo"),
    ("gigpo+spear", "gigpo"),
    ("drbot-gigpo+spear", "drbot-gigpo"),
    ("gigpo+spear-mixed-std", "gigpo"),
)
# presets whose ablations and variants are named "<root>-<change>" (spear-no-sil, ...)
VARIANT_ROOTS = ("spear", "gigpo+spear")
# the paper's gains in points (spec 5.1) on the benchmark each built-in environment stands in
# for: ALFWorld and WebShop success with Qwen2.5-1.5B-Instruct, AIME24 accuracy over Dr.BoT,
# and visual Sokoban success with Qwen2.5-VL-3B-Instruct (spec 5.4, the v4 Table 5)
_ALFWORLD = (
    "ALFWorld",
    {
        ("grpo+spear", "grpo"): 16.1,
        ("gigpo+spear", "gigpo"): 5.1,
        ("spear", "drbot"): 8.6,
        ("drbot-gigpo+spear", "drbot-gigpo"): 2.6,
    },
)
_WEBSHOP = (
    "WebShop",
    {
        ("grpo+spear", "grpo"): 20.7,
        ("gigpo+spear", "gigpo"): 11.8,
        ("spear", "drbot"): 13.9,
        ("drbot-gigpo+spear", "drbot-gigpo"): 12.3,
    },
)
PAPER_GAINS: dict[str, tuple[str, dict[tuple[str, str], float]]] = {
    "household": _ALFWORLD,
    "alfworld": _ALFWORLD,
    "shop": _WEBSHOP,
    "webshop": _WEBSHOP,
    "math": ("AIME24", {("spear", "drbot"): 3.8}),
    "sokoban": ("Sokoban", {("grpo+spear", "grpo"): 19.6, ("spear", "drbot"): 9.4}),
}


def pairs_for(presets: Sequence[str]) -> list[tuple[str, str]]:
    """The (method, base) pairs whose both presets ran: paper pairs (a variant of a paper
    method against that method's base too), then each ablation or variant against the preset
    it changes."""
    present = set(presets)
    pairs = [(a, b) for a, b in PAIRS if a in present and b in present]
    # ablations and labelled variants against the preset they change one switch of
    for root in VARIANT_ROOTS:
        if root in present:
            pairs += [(p, root) for p in presets if p.startswith(root + "-")]
    return pairs


def paired_difference(
    summaries: Sequence[dict[str, Any]], method: str, base: str, key: str
) -> tuple[float | None, float | None, int]:
    """Mean and sample std over seeds of ``summary[key]`` of ``method`` minus ``base``, and the
    number of seeds where both have the value."""
    by_seed = {(s["preset"], s["seed"]): s.get(key) for s in summaries}
    diffs = [
        by_seed[(method, seed)] - by_seed[(base, seed)]
        for (preset, seed) in by_seed
        if preset == method and by_seed[(method, seed)] is not None and by_seed.get((base, seed)) is not None
    ]
    if not diffs:
        return None, None, 0
    std = statistics.stdev(diffs) if len(diffs) > 1 else None
    return statistics.fmean(diffs), std, len(diffs)


def ratio_of_means(summaries: Sequence[dict[str, Any]], method: str, base: str, key: str) -> float | None:
    values = {
        p: [s[key] for s in summaries if s["preset"] == p and s.get(key) is not None] for p in (method, base)
    }
    if not values[method] or not values[base]:
        return None
    return statistics.fmean(values[method]) / statistics.fmean(values[base])


def run_diagnostics(records: list[dict[str, Any]]) -> dict[str, float | None]:
    """Per-run mechanism statistics from ``metrics.jsonl`` lines: how often the SIL buffer fired,
    how large its batches were, how much the updates moved the policy, and invalid actions,
    turns and tool calls per episode in the first and last 10% of steps."""
    steps = [r for r in records if "rollout/success_rate" in r]

    def mean(key: str, rows: list[dict[str, Any]] = steps) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None]
        return statistics.fmean(values) if values else None

    fired = [r for r in steps if r.get("sil/fired")]
    k = max(1, len(steps) // 10)
    return {
        "sil_fired": float(len(fired)),
        "replay_rows": mean("sil/replay_rows", fired),
        "ppo_clipfrac": mean("actor/ppo_clipfrac"),
        "cov_clipfrac": mean("actor/cov_clipfrac"),
        "approx_kl": mean("actor/approx_kl"),
        "invalid_start": mean("rollout/invalid_action_rate", steps[:k]),
        "invalid_end": mean("rollout/invalid_action_rate", steps[-k:]),
        # what the tool bonus pays for (spec 3.1): turns (agents) and tool calls (math),
        # early (when lambda_tool is near 1) against late; the paper has them rise early
        "turns_start": mean("rollout/turns", steps[:k]),
        "turns_end": mean("rollout/turns", steps[-k:]),
        "tool_calls_start": mean("rollout/tool_calls", steps[:k]),
        "tool_calls_end": mean("rollout/tool_calls", steps[-k:]),
    }


DIAGNOSTICS = (
    ("sil_fired", "SIL fired (steps)", 1.0, 1),
    ("replay_rows", "replay rows when fired", 1.0, 0),
    ("ppo_clipfrac", "PPO clip fraction", 1.0, 4),
    ("cov_clipfrac", "Cov clip fraction", 1.0, 4),
    ("approx_kl", "approx. KL per update", 1.0, 5),
    ("invalid_start", "invalid actions, first 10% (%)", 100.0, 1),
    ("invalid_end", "invalid actions, last 10% (%)", 100.0, 1),
    ("turns_start", "turns / episode, first 10%", 1.0, 2),
    ("turns_end", "turns / episode, last 10%", 1.0, 2),
    ("tool_calls_start", "tool calls / episode, first 10%", 1.0, 2),
    ("tool_calls_end", "tool calls / episode, last 10%", 1.0, 2),
)


def _fmt(value: float | None, scale: float = 1.0, digits: int = 1, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{scale * value:{'+' if sign else ''}.{digits}f}"


def gains_table(summaries: Sequence[dict[str, Any]], presets: Sequence[str], env: str) -> str:
    """Markdown: per (method, base) pair, paired gains in success points and the step-time ratio,
    next to the paper's gain on the benchmark ``env`` stands in for (if any)."""
    benchmark, paper_gains = PAPER_GAINS.get(env, ("", {}))
    paper_title = f"paper, {benchmark} (points)" if benchmark else "paper (points)"
    header = (
        "| method | base | seeds | final eval success gain (points) | eval AUC gain (points) "
        f"| rollout success AUC gain (points) | s/step ratio | {paper_title} |"
    )
    lines = [header, "|" + "---|" * 8]
    for method, base in pairs_for(presets):
        cells = []
        n = 0
        for key in ("final_success", "eval_auc", "success_auc"):
            mean, std, n_key = paired_difference(summaries, method, base, key)
            n = max(n, n_key)
            text = _fmt(mean, 100.0, 1, sign=True)
            cells.append(text if std is None else f"{text} ± {100.0 * std:.1f}")
        ratio = ratio_of_means(summaries, method, base, "time_per_step")
        paper = paper_gains.get((method, base))
        lines.append(
            f"| {method} | {base} | {n} | {' | '.join(cells)} | {_fmt(ratio, 1.0, 2)} "
            f"| {_fmt(paper, 1.0, 1, sign=True)} |"
        )
    return "\n".join(lines)


def significant_move(summary: dict[str, Any], alpha: float = 0.05) -> int:
    """+1 / -1 when a run's final held-out success is significantly above / below its start
    (``paired_gain`` and its exact McNemar ``paired_p`` < ``alpha``, paired by episode), else 0."""
    if summary["paired_p"] >= alpha or summary["paired_gain"] == 0:
        return 0
    return 1 if summary["paired_gain"] > 0 else -1


def start_gains_table(
    summaries: Sequence[dict[str, Any]], presets: Sequence[str], alpha: float = 0.05
) -> str:
    """Markdown: per preset, final eval minus the start on the same held-out episodes, run by
    run (``paired_*`` of :func:`spear.experiments.report.summarise_run`): the mean gain over seeds
    and how many runs moved up or down by an exact McNemar test at ``alpha``. Runs written
    before per-episode outcomes were kept are counted as "no outcomes"."""
    lines = [
        f"| preset | runs | mean paired gain (points) | runs up (p < {alpha:g}) | runs down (p < {alpha:g}) "
        "| runs without a significant change | no outcomes |",
        "|" + "---|" * 7,
    ]
    for preset in presets:
        runs = [s for s in summaries if s["preset"] == preset]
        paired = [s for s in runs if s.get("paired_p") is not None]
        moves = [significant_move(s, alpha) for s in paired]
        up, down = moves.count(1), moves.count(-1)
        mean = statistics.fmean(s["paired_gain"] for s in paired) if paired else None
        lines.append(
            f"| {preset} | {len(runs)} | {_fmt(mean, 100.0, 1, sign=True)} | {up} | {down} "
            f"| {len(paired) - up - down} | {len(runs) - len(paired)} |"
        )
    return "\n".join(lines)


def diagnostics_table(diagnostics: dict[str, list[dict[str, float | None]]]) -> str:
    """Markdown: per preset, the mean over seeds of each :func:`run_diagnostics` value."""
    lines = ["| preset | " + " | ".join(title for _, title, _, _ in DIAGNOSTICS) + " |"]
    lines.append("|" + "---|" * (len(DIAGNOSTICS) + 1))
    for preset, runs in diagnostics.items():
        cells = []
        for key, _, scale, digits in DIAGNOSTICS:
            values = [r[key] for r in runs if r[key] is not None]
            cells.append(_fmt(statistics.fmean(values) if values else None, scale, digits))
        lines.append(f"| {preset} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


Outcomes = dict[str, list]  # one evaluation's :func:`spear.trainer.evaluate.episode_outcomes`


def usable_pairs(pairs: Sequence[tuple[Outcomes | None, Outcomes | None]]) -> list[tuple[Outcomes, Outcomes]]:
    """The (A, B) pairs with both outcomes kept and the same number of episodes."""
    return [(a, b) for a, b in pairs if a and b and len(a["won"]) == len(b["won"])]


def pooled_gain(pairs: Sequence[tuple[Outcomes | None, Outcomes | None]]) -> PairedGain | None:
    """:func:`paired_gain` (B - A) over the concatenated episodes of several (A, B) outcome
    pairs, e.g. one per seed. Each pair's two evaluations played the same held-out tasks;
    every evaluation samples its own actions, so the pooled pairs are independent plays
    and the exact test holds conditionally on those tasks (it says nothing about other
    tasks, nor about other training seeds). Pairs that lack outcomes or differ in length
    are left out; None when no episode is left."""
    usable = usable_pairs(pairs)
    if not usable:
        return None
    fields = ("won", "failed")  # all that paired_gain reads
    before = concat_outcomes([a for a, _ in usable], fields)
    after = concat_outcomes([b for _, b in usable], fields)
    gain = paired_gain(before, after)
    return gain if gain.episodes else None


def pooled_episodes_table(outcomes: dict[tuple[str, int], dict[str, Any]], presets: Sequence[str]) -> str:
    """Markdown: final eval success compared episode by episode and pooled over seeds: each
    preset against its start, then each (method, base) pair of :func:`pairs_for` final
    against final on the seeds both ran. ``outcomes`` maps (preset, seed) to a run's stored
    ``{"before": ..., "after": ...}`` (:func:`spear.trainer.evaluate.load_outcomes`); the
    seeds column counts the runs (or pairs of runs) whose outcomes were kept."""
    lines = [
        "| comparison | seeds | episodes | difference (points, 95% CI) | won only by the first "
        "| won only by the second | McNemar p |",
        "|" + "---|" * 7,
    ]

    def row(label: str, pairs: list[tuple[Outcomes | None, Outcomes | None]]) -> None:
        gain, seeds = pooled_gain(pairs), len(usable_pairs(pairs))
        if gain is None:
            lines.append(f"| {label} | {seeds} | 0 | n/a | n/a | n/a | n/a |")
            return
        low, high = gain.ci
        lines.append(
            f"| {label} | {seeds} | {gain.episodes} | {100 * gain.gain:+.1f} ({100 * low:+.1f} to "
            f"{100 * high:+.1f}) | {gain.won_after_only} | {gain.won_before_only} | {gain.p_value:.2g} |"
        )

    for preset in presets:
        runs = [o for (p, _), o in sorted(outcomes.items()) if p == preset]
        row(f"{preset} - its start", [(o.get("before"), o.get("after")) for o in runs])
    for method, base in pairs_for(presets):
        seeds = sorted(s for p, s in outcomes if p == method and (base, s) in outcomes)
        row(
            f"{method} - {base}",
            [(outcomes[(base, s)].get("after"), outcomes[(method, s)].get("after")) for s in seeds],
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- sample efficiency
REACH_WINDOW = 5  # steps in the trailing mean of rollout success (5 x 32 episodes on the CPU defaults)
_LEVEL_TOLERANCE = 1e-9


def smoothed(series: Sequence[tuple[int, float]], window: int = REACH_WINDOW) -> list[tuple[int, float]]:
    """(step, mean of the last ``window`` values) of a (step, value) series ordered by step, from
    the ``window``-th value on: per-step rollout success is too noisy (32 episodes) to read alone."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    values = [v for _, v in series]
    ends = range(window - 1, len(series))
    return [(series[i][0], statistics.fmean(values[i + 1 - window : i + 1])) for i in ends]


def sample_efficiency_table(
    curves: dict[tuple[str, int], list[tuple[int, float]]],
    presets: Sequence[str],
    window: int = REACH_WINDOW,
) -> str:
    """Markdown: for each (method, base) pair of :func:`pairs_for`, over the seeds both ran
    for at least ``window`` steps, the highest level of ``window``-step mean rollout success
    that every one of those runs reaches (so that every run has a step to report), each
    preset's first step at that level (mean over seeds, and per seed), and method - base
    paired by seed (negative: the method gets there sooner). ``curves`` maps (preset, seed)
    to the run's (step, rollout success) series. The start level (the first mean, steps
    1..window) is shown beside it: a level near the start says that one of the runs never
    rose much above it."""
    lines = [
        f"| method | base | seeds | level both reach ({window}-step mean, %) | start level (%) "
        "| steps to reach it, method (per seed) | base (per seed) | method - base (steps, mean ± std) |",
        "|" + "---|" * 8,
    ]
    for method, base in pairs_for(presets):
        runs = {(p, s): smoothed(curves[(p, s)], window) for p, s in curves if p in (method, base)}
        seeds = sorted(s for p, s in runs if p == method and runs[(p, s)] and runs.get((base, s)))
        if not seeds:
            continue
        runs = {(p, s): runs[(p, s)] for s in seeds for p in (method, base)}
        # means that are equal on paper may differ in the last bit (e.g. k / 30 rates)
        level = min(max(v for _, v in run) for run in runs.values()) - _LEVEL_TOLERANCE
        start = statistics.fmean(run[0][1] for run in runs.values())
        # every run reaches the level: it is at most each run's maximum
        reach = {
            p: [next(step for step, v in runs[(p, s)] if v >= level) for s in seeds] for p in (method, base)
        }
        diffs = [a - b for a, b in zip(reach[method], reach[base], strict=True)]
        spread = f" ± {statistics.stdev(diffs):.1f}" if len(diffs) > 1 else ""
        method_cell, base_cell = (
            f"{statistics.fmean(reach[p]):.1f} ({', '.join(map(str, reach[p]))})" for p in (method, base)
        )
        lines.append(
            f"| {method} | {base} | {len(seeds)} | {100 * level:.1f} | {100 * start:.1f} | {method_cell} "
            f"| {base_cell} | {statistics.fmean(diffs):+.1f}{spread} |"
        )
    if len(lines) == 2:
        lines.append(f"| no pair of presets ran the same seed for {window} steps or more | | | | | | | |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- tool bonus
# Issue 36 item 1's measure, set down before the arms ran (docs/results_notes.md): what the
# agent does while the tool bonus is near full strength (lambda_tool >= BONUS_ON; spec 3.1),
# against arms without the bonus over the same steps. The paper has turns (tool calls) and
# entropy rise early under the bonus.
BONUS_ON = 0.85
WINDOW_MEASURES = (
    ("rollout/turns", "turns / episode", 2),
    ("rollout/tool_calls", "tool calls / episode", 2),
    ("actor/entropy", "token entropy", 3),
)


def bonus_window(
    records: dict[tuple[str, int], list[dict[str, Any]]], threshold: float = BONUS_ON
) -> range | None:
    """The training steps from the first to the last at which any run logs ``schedule/lambda_tool``
    at or above ``threshold`` (the runs of one setting share their step numbers); None when no
    run has the tool bonus on that strongly."""
    steps = [
        step
        for run in records.values()
        for step, weight in metric_series(run, "schedule/lambda_tool")
        if weight >= threshold
    ]
    return range(min(steps), max(steps) + 1) if steps else None


def least_squares_slope(points: Sequence[tuple[float, float]]) -> float:
    """Slope of the least-squares line through (x, y) points (at least two distinct x)."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("a slope needs at least two distinct x")
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def _mean_sd(values: Sequence[float], digits: int, sign: bool = False) -> str:
    mean, std = mean_std(values)
    text = _fmt(mean, 1.0, digits, sign)
    return text if std is None else f"{text} ± {std:.{digits}f}"


def bonus_window_table(
    records: dict[tuple[str, int], list[dict[str, Any]]],
    presets: Sequence[str],
    threshold: float = BONUS_ON,
) -> str:
    """Markdown: per preset (mean ± std over its seeds), for each of turns, tool calls and token
    entropy, the mean over :func:`bonus_window`'s steps, its change per step over them (the
    least-squares slope: positive = rising while the bonus is on) and the mean after them.
    ``records`` maps (preset, seed) to the run's ``metrics.jsonl`` lines; every preset is
    measured over the same steps, with or without the bonus."""
    window = bonus_window(records, threshold)
    if window is None:
        raise ValueError(
            f"no run logs schedule/lambda_tool >= {threshold}: none of these runs has the tool bonus on"
        )
    head = [
        f"{label}: steps {window[0]}-{window[-1]} | change / step | after" for _, label, _ in WINDOW_MEASURES
    ]
    lines = [f"| preset | seeds | {' | '.join(head)} |", "|" + "---|" * (2 + 3 * len(WINDOW_MEASURES))]
    for preset in presets:
        runs = [run for (p, _), run in sorted(records.items()) if p == preset]
        cells = []
        for key, _, digits in WINDOW_MEASURES:
            inside, slopes, after = [], [], []
            for run in runs:
                series = metric_series(run, key)
                during = [(t, v) for t, v in series if t in window]
                if len(during) >= 2:
                    inside.append(statistics.fmean(v for _, v in during))
                    slopes.append(least_squares_slope(during))
                later = [v for t, v in series if t > window[-1]]
                if later:
                    after.append(statistics.fmean(later))
            cells += [
                _mean_sd(inside, digits),
                _mean_sd(slopes, digits + 1, sign=True),
                _mean_sd(after, digits),
            ]
        lines.append(f"| {preset} | {len(runs)} | {' | '.join(cells)} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- stability
# Issue 36 item 5's rule, set down before the lr sweeps ran (docs/results_notes.md): a run
# breaks when its final held-out success is significantly below its start (exact McNemar, paired
# by episode), or when its token entropy runs away or collapses (the last tenth of the steps
# against the first tenth, :func:`spear.experiments.report.summarise_run`'s windows).
BREAK_P = 0.05
ENTROPY_RUNAWAY = 2.0  # entropy ends above this multiple of its start
ENTROPY_COLLAPSE = 0.5  # entropy ends below this multiple of its start


def stability_verdict(summary: dict[str, Any]) -> str:
    """``"holds"``, or why a run broke (``"success falls"``, ``"entropy runs away"``,
    ``"entropy collapses"``, joined by ", "), from its summary's ``paired_gain``, ``paired_p``,
    ``entropy_start`` and ``entropy_end``."""
    needed = ("paired_gain", "paired_p", "entropy_start", "entropy_end")
    missing = [k for k in needed if summary.get(k) is None]
    if missing:
        raise ValueError(
            f"a stability verdict needs the run's paired before/after evaluation and its entropy; "
            f"{summary.get('run_dir', 'this run')} lacks {', '.join(missing)}"
        )
    reasons = []
    if significant_move(summary, BREAK_P) == -1:
        reasons.append("success falls")
    start, end = summary["entropy_start"], summary["entropy_end"]
    if end > ENTROPY_RUNAWAY * start:
        reasons.append("entropy runs away")
    elif end < ENTROPY_COLLAPSE * start:
        reasons.append("entropy collapses")
    return ", ".join(reasons) or "holds"


def _lr(lr: float) -> str:
    return f"{lr:.0e}".replace("e-0", "e-")  # 0.0003 -> "3e-4", as the configs write it


def stability_table(summaries: Sequence[dict[str, Any]]) -> str:
    """Markdown: one row per run (summaries with ``preset``, ``lr`` and ``seed`` added), by
    preset, lr and seed: held-out success start -> final with the paired gain, token entropy
    start -> end, and :func:`stability_verdict`; then one row per (preset, lr) counting the
    runs that broke."""
    lines = [
        "| preset | lr | seed | held-out success, start -> final | paired gain, points (95% CI; p) "
        "| token entropy, first -> last tenth (ratio) | verdict |",
        "|" + "---|" * 7,
    ]
    ordered = sorted(summaries, key=lambda s: (s["preset"], s["lr"], s["seed"]))
    verdicts = [stability_verdict(s) for s in ordered]
    for s, verdict in zip(ordered, verdicts, strict=True):
        low, high = s["paired_gain_low"], s["paired_gain_high"]
        lines.append(
            f"| {s['preset']} | {_lr(s['lr'])} | {s['seed']} | {100 * s['eval_before']:.1f}% -> "
            f"{100 * s['final_success']:.1f}% | {100 * s['paired_gain']:+.1f} ({100 * low:+.1f} to "
            f"{100 * high:+.1f}; {s['paired_p']:.2g}) | {s['entropy_start']:.3f} -> {s['entropy_end']:.3f} "
            f"({s['entropy_end'] / s['entropy_start']:.2f}x) | {verdict} |"
        )
    lines += ["", "| preset | lr | runs | broke |", "|---|---|---|---|"]
    cells = sorted({(s["preset"], s["lr"]) for s in ordered})
    for cell in cells:
        in_cell = [v for s, v in zip(ordered, verdicts, strict=True) if (s["preset"], s["lr"]) == cell]
        broke = sum(v != "holds" for v in in_cell)
        lines.append(f"| {cell[0]} | {_lr(cell[1])} | {len(in_cell)} | {broke} |")
    return "\n".join(lines)


def stability_gaps_table(
    summaries: Sequence[dict[str, Any]],
    outcomes: dict[tuple[str, float, int], Outcomes],
    method: str = "spear",
) -> str:
    """Markdown: at each lr, ``method`` against every other preset that ran there, over the
    seeds both ran: their final held-out success (mean over those seeds) and method - base
    pooled over the seeds and paired by episode (:func:`pooled_gain`). ``outcomes`` maps
    (preset, lr, seed) to a run's final evaluation outcomes."""
    lines = [
        f"| lr | base | seeds | final, {method} | final, base "
        f"| {method} - base, points (95% CI) | McNemar p |",
        "|" + "---|" * 7,
    ]
    by_cell: dict[tuple[str, float], dict[int, dict[str, Any]]] = {}
    for s in summaries:
        by_cell.setdefault((s["preset"], s["lr"]), {})[s["seed"]] = s
    for lr in sorted({lr for _, lr in by_cell}):
        ours = by_cell.get((method, lr), {})
        for base in sorted(p for p, cell_lr in by_cell if cell_lr == lr and p != method):
            seeds = sorted(set(ours) & set(by_cell[(base, lr)]))
            gain = pooled_gain([(outcomes.get((base, lr, k)), outcomes.get((method, lr, k))) for k in seeds])
            if gain is None:
                continue
            finals = [
                statistics.fmean(by_cell[(p, lr)][k]["final_success"] for k in seeds) for p in (method, base)
            ]
            low, high = gain.ci
            lines.append(
                f"| {_lr(lr)} | {base} | {', '.join(map(str, seeds))} | {100 * finals[0]:.1f}% "
                f"| {100 * finals[1]:.1f}% | {100 * gain.gain:+.1f} ({100 * low:+.1f} to {100 * high:+.1f}) "
                f"| {gain.p_value:.2g} |"
            )
    if len(lines) == 2:
        lines.append(f"| no lr where {method} and another preset ran the same seed | | | | | | |")
    return "\n".join(lines)
