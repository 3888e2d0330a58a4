"""A run's curves as Plotly figures: plain data (traces and a layout) that the page
hands to plotly.js, built here so a test can read what each chart will draw.

The main vital signs come first in a fixed order (loss, return per seat, invalid
answers, entropy, KL, learning rate, time), then every other number the run
logged, one chart per metric, so nothing a trainer logs is hidden. Evaluations
carry their 95% intervals as error bars; exploitability its bootstrap interval
where it was sampled.

Plotly draws a few HTML tags inside titles and legend names, so every name that
comes from a run (metric keys, opponents, games) is HTML-escaped here; plotly
shows the entities as the characters they stand for.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

from sparring.records import ExploitabilityEntry

# (chart id, title, metric keys drawn as lines): the trainer's vital signs (trainer._step_metrics)
VITALS = (
    ("loss", "policy loss", ("loss",)),
    ("invalid", "invalid answer rate (training games)", ("invalid_rate",)),
    ("entropy", "entropy per sampled token", ("entropy",)),
    ("kl", "KL: approximate KL of the update, KL to the initial model and to the magnet",
     ("approx_kl", "kl", "magnet_kl")),
    ("gap", "sampler/trainer gap: mean |log-prob difference| per sampled token, before the update",
     ("sampler_gap",)),
    ("lr", "learning rate", ("lr",)),
    ("time", "seconds per step: generating games, training, syncing weights to the sampler",
     ("generate_s", "train_s", "sync_s")),
)
RETURNS = ("mean_return", "mean_return_by_game")
NOT_DRAWN = {"step"}
# evaluation metrics with an interval, the most telling first (learn.evaluation.summarize_eval)
EVAL_ORDER = ("return", "win_or_draw", "win", "draw", "invalid")
EVAL_LABELS = {"return": "return", "win_or_draw": "win-or-draw rate", "win": "win rate", "draw": "draw rate",
               "invalid": "invalid answer rate"}
# the order of a run's charts, by kind; a "metric" and an "eval" kind is one chart per metric, numbered
ORDER = ("loss", "return", *(chart_id for chart_id, _, _ in VITALS[1:]), "metric", "eval", "exploitability")
NUMBERED = ("metric", "eval")


@dataclass(frozen=True)
class Chart:
    """One chart before it is a figure. `key` names it alike in every run, so the
    compare page can lay several runs' charts of one metric over each other."""

    kind: str  # one of ORDER
    title: str
    traces: list[dict[str, Any]]
    y_title: str = ""
    log_y: bool = False
    metric: str | None = None  # what a "metric" or an "eval" chart draws

    @property
    def key(self) -> tuple[str, str | None]:
        return self.kind, self.metric

    @property
    def rank(self) -> tuple[int, int]:
        """Where the chart goes: by kind, evaluations by EVAL_ORDER; a stable sort keeps
        other metrics in the order they were logged."""
        return ORDER.index(self.kind), _eval_rank(self.metric) if self.kind == "eval" else 0


def number(value: Any) -> float | None:
    """A value a chart can draw: finite numbers; NaN, infinities and the rest are
    gaps (and JSON has no NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def figure(chart_id: str, title: str, traces: list[dict], y_title: str = "", x_title: str = "step",
           log_y: bool = False) -> dict[str, Any]:
    layout = {
        "title": {"text": html.escape(title), "font": {"size": 14}, "x": 0.01},
        "xaxis": {"title": {"text": x_title}, "zeroline": False},
        "yaxis": {"title": {"text": html.escape(y_title)}, "type": "log" if log_y else "linear"},
        "margin": {"l": 56, "r": 12, "t": 36, "b": 40}, "height": 300,
        "legend": {"orientation": "h", "y": -0.25}, "showlegend": len(traces) > 1,
        "uirevision": chart_id,  # a zoom survives the live updates
    }
    return {"id": f"chart-{chart_id}", "title": title, "data": traces, "layout": layout}


def line(name: str, x: list, y: list, **extra: Any) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines+markers", "name": html.escape(name), "x": x, "y": y,
            "marker": {"size": 4}, **extra}


def training_figures(steps: list[dict[str, Any]], evals: list[dict[str, Any]],
                     exploitability: list[ExploitabilityEntry]) -> list[dict[str, Any]]:
    """Every chart of a run that logged training steps, evaluations or
    exploitability; none for a run that logged none."""
    return figures(run_charts(steps, evals, exploitability))


def run_charts(steps: list[dict[str, Any]], evals: list[dict[str, Any]],
               exploitability: list[ExploitabilityEntry]) -> list[Chart]:
    x = [s.get("step", i) for i, s in enumerate(steps)]
    charts = [chart for chart_id, title, keys in VITALS for chart in _lines(chart_id, title, keys, steps, x)]
    charts += _returns(steps, x) + _other_metrics(steps, x) + eval_charts(evals)
    if exploitability:
        charts.append(exploitability_chart(exploitability))
    return sorted(charts, key=lambda chart: chart.rank)


def figures(charts: list[Chart]) -> list[dict[str, Any]]:
    """The charts as Plotly figures, in the order given; the charts of a NUMBERED kind
    numbered in that order (chart-metric-0, chart-metric-1...)."""
    counts = dict.fromkeys(NUMBERED, 0)
    drawn = []
    for chart in charts:
        chart_id = chart.kind
        if chart.kind in counts:
            chart_id = f"{chart.kind}-{counts[chart.kind]}"
            counts[chart.kind] += 1
        drawn.append(figure(chart_id, chart.title, chart.traces, chart.y_title, log_y=chart.log_y))
    return drawn


def _lines(chart_id: str, title: str, keys: tuple[str, ...], steps: list[dict], x: list) -> list[Chart]:
    traces = [line(key, x, [number(s.get(key)) for s in steps]) for key in keys if any(key in s for s in steps)]
    log_y = chart_id == "lr"  # schedules span decades, and a constant rate still reads on a log axis
    return [Chart(chart_id, title, traces, keys[0] if len(traces) == 1 else "", log_y=log_y)] if traces else []


def _returns(steps: list[dict], x: list) -> list[Chart]:
    """Mean training return per seat; per game and seat when the run trains on several
    games (its roles are "game:seat")."""
    several = len({role.split(":")[0] for s in steps for role in s.get("mean_return_by_game") or {}}) > 1
    key = "mean_return_by_game" if several else "mean_return"
    roles = sorted({role for s in steps for role in (s.get(key) or {})})
    traces = []
    for role in roles:
        game, _, seat = role.rpartition(":")
        label = f"seat {int(seat) + 1}" if seat.isdigit() else role
        traces.append(line(f"{game} {label}" if game else label, x,
                           [number((s.get(key) or {}).get(role)) for s in steps]))
    title = "mean training return per seat" + (" and game" if several else "")
    return [Chart("return", title, traces, "return")] if traces else []


def _other_metrics(steps: list[dict], x: list) -> list[Chart]:
    """One chart per metric the vital signs leave out: a number is one line, a
    dictionary of numbers (e.g. pool win rates per checkpoint) a line per key."""
    drawn = NOT_DRAWN | set(RETURNS) | {k for _, _, keys in VITALS for k in keys}
    keys = [k for k in dict.fromkeys(k for s in steps for k in s) if k not in drawn]
    charts = []
    for key in keys:
        values = [s.get(key) for s in steps]
        if all(v is None or isinstance(v, dict) for v in values):
            names = list(dict.fromkeys(k for v in values if v for k in v))
            traces = [line(str(name), x, [number((v or {}).get(name)) for v in values]) for name in names]
            traces = [t for t in traces if any(y is not None for y in t["y"])]
        else:
            traces = [line(key, x, [number(v) for v in values])]
            traces = traces if any(y is not None for y in traces[0]["y"]) else []
        if traces:
            charts.append(Chart("metric", key, traces, key if len(traces) == 1 else "", metric=key))
    return charts


def eval_figures(evals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The evaluation charts alone, as figures."""
    return figures(eval_charts(evals))


def eval_charts(evals: list[dict[str, Any]]) -> list[Chart]:
    """One chart per evaluated metric with an interval (`return` with `return_ci`...),
    a line per opponent, the 95% intervals as error bars."""
    metrics = [k for k in dict.fromkeys(k for e in evals for k in e) if f"{k}_ci" in {c for e in evals for c in e}]
    metrics.sort(key=_eval_rank)
    charts = []
    for metric in metrics:
        traces = []
        for opponent in dict.fromkeys(str(e.get("opponent")) for e in evals if metric in e):
            points = [e for e in evals if str(e.get("opponent")) == opponent and metric in e]
            error = {"type": "data", "array": [number(e.get(f"{metric}_ci")) for e in points], "visible": True}
            traces.append(line(f"vs {opponent}", [e["step"] for e in points],
                               [number(e[metric]) for e in points], error_y=error))
        label = EVAL_LABELS.get(metric, metric)
        charts.append(Chart("eval", f"evaluation: {label} with 95% intervals", traces, label, metric=metric))
    return charts


def _eval_rank(metric: str | None) -> int:
    return EVAL_ORDER.index(metric) if metric in EVAL_ORDER else len(EVAL_ORDER)


def exploitability_chart(entries: list[ExploitabilityEntry]) -> Chart:
    """Exploitability per checkpoint (NashConv where the game has no exploitability),
    with the bootstrap 95% interval of the sampled ones as error bars."""
    use_nash_conv = any(e.exploitability is None for e in entries)
    key = "nash_conv" if use_nash_conv else "exploitability"
    y = [number(getattr(e, key)) for e in entries]
    extra: dict[str, Any] = {"text": [e.mode for e in entries]}
    if not use_nash_conv and any(e.interval for e in entries):
        extra["error_y"] = {
            "type": "data", "symmetric": False, "visible": True,
            "array": [number(e.interval[1] - v) if e.interval and v is not None else None for e, v in zip(entries, y)],
            "arrayminus": [number(v - e.interval[0]) if e.interval and v is not None else None
                           for e, v in zip(entries, y)]}
    title = "NashConv over checkpoints" if use_nash_conv else "exploitability over checkpoints"
    trace = line(key.replace("_", " "), [e.step for e in entries], y, **extra)
    return Chart("exploitability", title + " (0 at a Nash equilibrium)", [trace], key.replace("_", " "))
