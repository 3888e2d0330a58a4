"""Several runs' curves on one chart each: the compare page.

Each run's charts are built as its own page builds them (charts.run_charts), then
the charts of one metric are laid over each other: a trace per run (per run and
series where a chart has several, e.g. a return per seat), a colour per run and a
dash per series, in the order a run's page uses. A run that logged no steps,
evaluations or exploitability adds no trace and says so beside its name.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparring.dashboard.charts import Chart, figures, run_charts
from sparring.dashboard.runs import RunsRoot, StoreStamp
from sparring.dashboard.summary import reading
from sparring.errors import SparringError
from sparring.records import ExploitabilityEntry

MAX_RUNS = 8  # past this many lines a chart's colours and legend stop telling the runs apart
# plotly's own colour cycle, one colour per run (MAX_RUNS of its ten)
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")  # one per series of a run's chart
NOTHING_TO_DRAW = "logged no training steps, evaluations or exploitability: nothing to draw"


class NotComparable(ValueError):
    """The runs asked for cannot be compared (fewer than two, more than MAX_RUNS)."""


@dataclass(frozen=True)
class RunCurves:
    """What one run logged that the charts draw, or why its store could not be read."""

    name: str
    steps: list[dict[str, Any]]
    evals: list[dict[str, Any]]
    exploitability: list[ExploitabilityEntry]
    error: str | None = None

    @property
    def note(self) -> str | None:
        """What the page says beside the run's name: why it adds no curve, if it adds none."""
        if self.error is not None:
            return self.error
        return None if self.steps or self.evals or self.exploitability else NOTHING_TO_DRAW


def picked_runs(root: RunsRoot, names: list[str]) -> list[Path]:
    """The run directories `names` name, each once, in the order named. A name that
    names no run under the root raises runs.UnknownRun, as on a run's page; fewer
    than two runs or more than MAX_RUNS raise NotComparable."""
    names = list(dict.fromkeys(names))
    if len(names) > MAX_RUNS:
        raise NotComparable(f"{len(names)} runs picked: compare at most {MAX_RUNS} at once, "
                            "their curves on one chart stop being readable past that")
    run_dirs = list(dict.fromkeys(root.resolve(name) for name in names))  # two spellings of one run count once
    if len(run_dirs) < 2:
        raise NotComparable("pick two or more runs to compare: tick them on the runs page, then "
                            "\"compare selected\"")
    return run_dirs


def read_curves(name: str, run_dir: Path) -> RunCurves:
    try:
        with reading(run_dir) as store:
            return RunCurves(name, store.train_steps(), store.train_evals(), store.exploitability())
    except SparringError as exc:  # a damaged store, or one of another schema: its row says why
        return RunCurves(name, [], [], [], error=str(exc))


def stamp_tag(run_dirs: list[Path], statuses: list[str]) -> str:
    """An ETag that changes when any of the runs' stores or statuses does."""
    stamps = [(StoreStamp.of(d), status) for d, status in zip(run_dirs, statuses)]
    return '"' + hashlib.sha256(repr(stamps).encode()).hexdigest()[:32] + '"'


def compare_figures(runs: list[RunCurves]) -> list[dict[str, Any]]:
    """A Plotly figure per chart any of the runs has, in the order a run's page uses;
    the run at position i drawn in COLORS[i]."""
    laid: dict[tuple[str, str | None], list[tuple[int, str, Chart]]] = {}
    for index, run in enumerate(runs):
        for chart in run_charts(run.steps, run.evals, run.exploitability):
            laid.setdefault(chart.key, []).append((index, run.name, chart))
    charts = sorted((_overlay(charts) for charts in laid.values()), key=lambda chart: chart.rank)
    drawn = figures(charts)
    for figure in drawn:
        figure["layout"]["showlegend"] = True  # a chart only one run logged still says whose it is
    return drawn


def _overlay(charts: list[tuple[int, str, Chart]]) -> Chart:
    """The runs' charts of one metric as one chart. A trace is named by its run, and
    by its series too unless the y-axis already names the one series (the loss)."""
    series = list(dict.fromkeys(trace["name"] for _, _, chart in charts for trace in chart.traces))
    y_titles = {chart.y_title for _, _, chart in charts}
    y_title = y_titles.pop() if len(y_titles) == 1 else ""
    run_alone = series == [html.escape(y_title)]  # trace names come escaped (charts.line)
    traces = []
    for index, run, chart in charts:
        color = COLORS[index % len(COLORS)]
        for trace in chart.traces:
            name = html.escape(run) if run_alone else f"{html.escape(run)}: {trace['name']}"
            style = {"color": color, "dash": DASHES[series.index(trace["name"]) % len(DASHES)]}
            traces.append({**trace, "name": name, "line": style, "marker": {**trace["marker"], "color": color}})
    first = charts[0][2]
    titles = " / ".join(dict.fromkeys(chart.title for _, _, chart in charts))  # e.g. exploitability and NashConv
    return Chart(first.kind, titles, traces, y_title, log_y=first.log_y, metric=first.metric)
