"""Run reports: one self-contained HTML page and one markdown summary per run directory.

`write_report(run_dir)` looks at what the run holds and writes a section for each
thing it finds, and nothing for what it does not:

- matches (any run): per agent win/draw/loss, mean return with its 95% interval and
  the rate of invalid answers;
- a tournament (meta "tournament", the plan `run_tournament` stores): the payoff heat
  map with 95% intervals and every rating `rate` gives;
- a training run (the store's train_steps and train_evals): learning curves, the evaluation table with 95% intervals, the invalid rate over steps;
- exploitability over checkpoints (the store's exploitability table);
- benchmark results (meta "benchmark": one `BenchmarkReport.to_dict()`, or a list);
- example matches turn by turn: view, the model's completion, action, invalid reasons.

Everything an agent or model wrote (completions, messages, reasons, views, names) is
text, never markup: `html.escape` in the page, fenced code in the markdown. The page
carries its CSS inline and its plots as PNG data URIs, so it is one file that opens
offline and runs no script; the same PNGs are written next to the markdown, in
RUN_DIR/report/.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

from sparring.arena.ratings import RATING_COLUMNS, Ratings, rate, rating_rows
from sparring.arena.results import payoff_matrix, self_play, summarize
from sparring.arena.tournament import planned_matches
from sparring.errors import SparringError
from sparring.eval.benchmarks.report import BenchmarkReport
from sparring.eval.curves import plot_curves
from sparring.eval.document import Document, cell, count, num, pm, pyplot
from sparring.games.core import GameSpec
from sparring.records import (
    ExploitabilityEntry,
    Generation,
    MatchRecord,
    PayoffMatrix,
    PopulationIteration,
    PopulationMember,
)
from sparring.store import RunStore

REPORT_DIR = "report"
EXAMPLE_MATCHES = 3  # the first few matches, and as many again of those with invalid answers
STEP_ROWS = 12  # rows of the per-step training table (evenly spaced over the run)
BENCHMARK_ITEMS = 20  # item rows shown per benchmark


# ---- the report ------------------------------------------------------------------------


def write_report(run_dir: str | Path, bootstrap: int = 1000, examples: int = EXAMPLE_MATCHES) -> tuple[Path, Path]:
    """Write RUN_DIR/report/report.html and report.md (with the plots as PNGs beside
    them) and return their paths. A run with nothing finished raises SparringError
    saying what is missing and what to run."""
    run_dir = Path(run_dir)
    store = RunStore(run_dir)
    try:
        matches = store.matches()
        tournament = store.get_meta("tournament")
        steps = store.train_steps()
        exploitability = store.exploitability()
        benchmarks = store.get_meta("benchmark")
        benchmarks = [benchmarks] if isinstance(benchmarks, dict) else list(benchmarks or [])
        population = store.population_iterations()
        generations = store.generations()
        if not (matches or steps or exploitability or benchmarks or population or generations):
            raise SparringError(_nothing_finished(run_dir, store, tournament))

        folder = run_dir / REPORT_DIR
        folder.mkdir(exist_ok=True)
        doc = Document(folder, f"sparring report: {run_dir.name}")
        _overview(doc, run_dir, store, matches)
        if generations:
            _evolution_section(doc, store, generations, matches, bootstrap)
        if matches:
            _results_section(doc, store, matches, tournament)
        if tournament is not None and matches:
            _tournament_section(doc, tournament, matches, bootstrap)
        if steps and store.kind() == "mirror":
            _mirror_section(doc, run_dir, store.get_meta("mirror_config") or {}, steps)
        elif steps:
            _training_section(doc, run_dir, store, steps)
        elif store.get_meta("kind") == "train":
            doc.note(f"this training run has no logged step yet: no learning curves. Continue it with "
                     f"`sparring train --resume {run_dir}`, or wait for its first step")
        if population:
            _population_section(doc, store.members(), population, store.metagame(), store.metagame_half_widths())
        if exploitability:
            _exploitability_section(doc, exploitability)
        for benchmark in benchmarks:
            _benchmark_section(doc, benchmark)
        if matches:
            _examples_section(doc, store, matches, examples)
    finally:
        store.close()
    return doc.save()


def _nothing_finished(run_dir: Path, store: RunStore, tournament: dict | None) -> str:
    if tournament is not None:
        total = planned_matches(tournament)
        return (f"{run_dir} holds a tournament of {total} matches, none finished yet: nothing to report. "
                f"Run the same `sparring tournament ... --out {run_dir}` command again to play it")
    if store.get_meta("kind") == "train" or store.get_meta("train_config") is not None:
        return (f"{run_dir} holds a training run with no finished step yet: nothing to report. "
                f"Continue it with `sparring train --resume {run_dir}`, or wait for its first step")
    if store.get_meta("config") is not None:
        return (f"{run_dir} holds a run with no finished match yet: nothing to report. Continue it by "
                f"running the same `sparring play ... --out {run_dir}` command again")
    return (f"{run_dir} holds no finished matches, training steps, exploitability checks or benchmark "
            f"results: nothing to report. Fill it first with `sparring play ... --out {run_dir}`, "
            "`sparring tournament`, `sparring train` or `sparring bench`")


# ---- sections ------------------------------------------------------------------------------


def _overview(doc: Document, run_dir: Path, store: RunStore, matches: list[MatchRecord]) -> None:
    created = store.get_meta("created_at")
    facts = [f"run directory: {run_dir}"]
    if created is not None:
        facts.append(f"created: {time.strftime('%Y-%m-%d %H:%M', time.localtime(created))}")
    if matches:
        games = ", ".join(dict.fromkeys(m.game for m in matches))
        facts.append(f"{len(matches)} finished matches of {games}")
    doc.bullets(facts)
    settings = {key: store.get_meta(key) for key in ("config", "train_config", "tournament")}
    settings = {k: v for k, v in settings.items() if v is not None}
    if settings:
        doc.details("settings", json.dumps(settings, indent=2))


def _results_section(doc: Document, store: RunStore, matches: list[MatchRecord], tournament: dict | None) -> None:
    by_seat = self_play(matches)  # pooled, an agent's seats against itself cancel in a zero-sum game
    training = store.kind() == "train"
    doc.heading("Training games" if training else "Results per agent")
    doc.text(("The games the policy trained on, against its opponents and itself: what it learned from, not "
              "an evaluation (the evaluations and exploitability below are). " if training else "")
             + ("Each seat apart, since an agent plays itself here. " if by_seat else "Pooled over every seat. ")
             + "Mean return with its normal-approximation 95% interval; the invalid rate is rejected answers "
             "over all answers the agent gave (random moves played for it after its retries ran out are not "
             "answers).")
    answers = store.answers_by_agent()
    rows, summaries = [], summarize(matches, by_seat=by_seat)
    mean_returns = [s.mean_return for s in summaries]  # (mean, 95% half-width) each
    for s, (mean, half) in zip(summaries, mean_returns):
        n, bad = answers.get(s.agent, (0, 0))
        rate_text = f"{bad / n:.1%} ({bad}/{n})" if n else "n/a"
        label = s.agent if s.seat is None else f"{s.agent} (seat {s.seat + 1})"
        rows.append([label, str(s.games), str(s.wins), str(s.draws), str(s.losses),
                     pm(mean, half, 3), rate_text, str(s.forfeits)])
    doc.table(["agent", "games", "win", "draw", "loss", "mean return (95% CI)", "invalid answers", "forfeits"], rows)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(summaries) + 2), 3.2))
    means = [mean for mean, _ in mean_returns]
    halves = [half if math.isfinite(half) else 0.0 for _, half in mean_returns]
    ax.bar(range(len(summaries)), means, yerr=halves, capsize=4, color="#4c72b0")
    ax.set_xticks(range(len(summaries)), [row[0] for row in rows], rotation=20, ha="right")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel("mean return (95% CI)")
    doc.figure(fig, "returns.png", "mean return per agent with 95% intervals")


def tournament_field(plan: dict, matches: list[MatchRecord]) -> tuple[list[MatchRecord], list[str]]:
    """The finished matches of a stored tournament plan (meta "tournament") and the
    agents that played them, in the plan's order."""
    played = [m for m in matches if m.index < planned_matches(plan)]
    seen = {a for m in played for a in m.seats}
    return played, [a for a in plan["agents"] if a in seen]


def tournament_ratings(plan: dict, played: list[MatchRecord], agents: list[str],
                       bootstrap: int) -> tuple[GameSpec | None, Ratings | None, list[str]]:
    """The installed spec of a stored tournament's game, every rating of its finished
    matches, and notes saying what was left out and why."""
    spec, spec_note = _spec(plan["game"])
    notes = [spec_note] if spec_note else []
    if spec is None or len(agents) < 2:
        return spec, None, notes
    try:
        return spec, rate(played, spec, agents, bootstrap=bootstrap, seed=plan.get("seed", 0)), notes
    except SparringError as exc:
        return spec, None, notes + [f"ratings left out: {exc}"]


def rate_run(matches: list[MatchRecord], bootstrap: int, seed: int = 0) -> tuple[Ratings | None, list[str]]:
    """Every agent of a run rated together, where its matches are of one two-player
    game between two agents or more (else None), and notes on what was left out."""
    agents = list(dict.fromkeys(a for m in matches for a in m.seats))
    if len({m.game for m in matches}) != 1 or any(len(m.seats) != 2 for m in matches) or len(agents) < 2:
        return None, []
    spec, spec_note = _spec(matches[0].game)
    notes = [spec_note] if spec_note else []
    if spec is None:
        return None, notes
    try:
        return rate(matches, spec, agents, bootstrap=bootstrap, seed=seed), notes
    except SparringError as exc:
        return None, notes + [f"ratings left out: {exc}"]


def _tournament_section(doc: Document, plan: dict, matches: list[MatchRecord], bootstrap: int) -> None:
    doc.heading("Tournament")
    total = planned_matches(plan)
    played, agents = tournament_field(plan, matches)
    doc.text(f"{plan['mode'].replace('_', ' ')} of {', '.join(plan['agents'])} in {plan['game']}, "
             f"{plan['games_per_pair']} matches per pairing with seats swapped evenly: "
             f"{len(played)} of {total} matches finished.")
    if len(played) < total:
        doc.note(f"unfinished: {total - len(played)} matches are missing. Run the same "
                 "`sparring tournament` command with this --out again to finish it; until then "
                 "the numbers below cover the finished matches only.")
    if len(agents) < 2:
        doc.note("fewer than two agents have finished matches: no payoff matrix or ratings yet.")
        return
    spec, ratings, notes = tournament_ratings(plan, played, agents, bootstrap)
    for note in notes:
        doc.note(note)
    payoff = ratings.payoff if ratings is not None else payoff_matrix(played, agents)

    doc.heading("Payoff matrix", 3)
    doc.text("Row agent's mean return against the column agent, pooled over both seats, "
             "± the half-width of its 95% interval.")
    n = len(agents)
    cells = [[agents[i]] + [
        "" if payoff.games[i, j] == 0 else f"{pm(payoff.mean[i, j], payoff.ci95[i, j], 2)} (n={payoff.games[i, j]})"
        for j in range(n)] for i in range(n)]
    doc.table(["agent \\ opponent", *agents], cells)
    doc.figure(_heat_map(payoff, spec), "payoff.png", "payoff heat map: mean return of row agent against column agent")

    if ratings is not None:
        doc.heading("Ratings", 3)
        doc.text("Bradley-Terry Elo fitted to wins (a draw is half a win) and to the return margin, "
                 f"with bootstrap 95% intervals ({bootstrap} resamples); openskill (Plackett-Luce) "
                 "mu ± sigma; Nash averaging (expected return against the maximum-entropy Nash "
                 "mixture, with that mixture's weight p) and alpha-rank mass.")
        doc.table(list(RATING_COLUMNS), rating_rows(ratings, best_first=True))
        for note in ratings.notes:
            doc.note(note)


def _heat_map(payoff: PayoffMatrix, spec: GameSpec | None):
    import numpy as np

    plt = pyplot()
    n = len(payoff.agents)
    fig, ax = plt.subplots(figsize=(1.5 * n + 3, 1.2 * n + 1.6))
    finite = payoff.mean[np.isfinite(payoff.mean)]
    if spec is not None:
        bound = max(abs(v) for v in spec.utility_range)
    else:
        bound = float(np.abs(finite).max()) if finite.size else 1.0
    cmap = plt.get_cmap("RdBu").with_extremes(bad="#dddddd")  # grey: unplayed pairings
    image = ax.imshow(np.ma.masked_invalid(payoff.mean), cmap=cmap, vmin=-(bound or 1), vmax=bound or 1)
    for i in range(n):
        for j in range(n):
            if payoff.games[i, j]:
                ax.text(j, i, f"{payoff.mean[i, j]:+.2f}\n±{payoff.ci95[i, j]:.2f}", ha="center", va="center", fontsize=9)
    ax.set_xticks(range(n), payoff.agents, rotation=25, ha="right")
    ax.set_yticks(range(n), payoff.agents)
    ax.set_xlabel("opponent")
    ax.set_ylabel("agent")
    fig.colorbar(image, ax=ax, label="mean return")
    return fig


def _spec(game: str) -> tuple[GameSpec | None, str | None]:
    """The installed spec of a stored game reference `ref@version`, and a note when
    it cannot be built or its rules have changed since the run."""
    from sparring.games.registry import make_game, split_version

    ref, version = split_version(game)
    try:
        spec = make_game(ref).spec
    except SparringError as exc:
        return None, f"{game} cannot be loaded here ({exc}): ratings that need the game's facts are left out"
    if version is not None and version != spec.version:
        return spec, (f"the run played version {version} of {ref}; version {spec.version} is installed and "
                      "its facts (zero-sum, utility range) are used for the ratings")
    return spec, None


def _training_section(doc: Document, run_dir: Path, store: RunStore, steps: list[dict]) -> None:
    evals = store.train_evals()
    config = store.get_meta("train_config") or {}
    doc.heading("Training")
    planned = config.get("steps")
    done = steps[-1]["step"]
    doc.text(f"{len(steps)} logged steps, the last step {done}"
             + (f" of {planned} planned." if planned else "."))
    if planned and done < planned:
        doc.note(f"unfinished: {planned - done} steps to go. Continue with `sparring train --resume {run_dir}`.")
    png, eval_rows = plot_curves(run_dir, (steps, evals))  # also leaves curves.png in the run, as `sparring curves` does
    doc.png(png.read_bytes(), "curves.png", "learning curves: loss, training return per seat, "
            "invalid answer rate, evaluation win-or-draw rate with 95% intervals")
    if eval_rows:
        doc.heading("Evaluations", 3)
        doc.table(["step", "opponent", "win or draw (95% CI)", "return (95% CI)", "invalid rate"],
                  [[str(r[0]), *r[1:]] for r in eval_rows])
    doc.heading("Per step", 3)
    shown = steps if len(steps) <= STEP_ROWS else [
        steps[round(k * (len(steps) - 1) / (STEP_ROWS - 1))] for k in range(STEP_ROWS)]
    rows = []
    for s in shown:
        returns = ", ".join(f"seat {int(role) + 1}: {v:+.3f}" for role, v in s.get("mean_return", {}).items())
        rows.append([str(s["step"]), num(s.get("loss"), "+.4f"), returns, num(s.get("invalid_rate"), ".3f"),
                     num(s.get("kl"), ".4f"), num(s.get("entropy"), ".3f")])
    doc.table(["step", "loss", "training return", "invalid rate", "kl", "entropy"], rows)


def _mirror_section(doc: Document, run_dir: Path, config: dict, steps: list[dict]) -> None:
    doc.heading("Mirror descent over the whole game tree")
    png, _ = plot_curves(run_dir, (steps, []))
    doc.png(png.read_bytes(), "curves.png", "the exact exploitability of the model's policy per iteration, and the "
            "squared log gap to each iteration's target before and after its fit")
    doc.text(f"{len(steps)} iterations at step size {config.get('step_size')}, magnet coefficient "
             f"{config.get('magnet_coef')} (magnet moved every {config.get('magnet_every') or 'never'}), "
             f"up to {config.get('fit_steps')} {config.get('fit', 'adam').replace('_', '-')} step(s) per iteration "
             f"(until the squared log gap is below {config.get('fit_tolerance', 0)} of its value before). Each row "
             "is the policy an iteration starts from: its exact exploitability, how far the mirror descent step "
             "moves it (KL), and the squared log-probability gap to the step's target before the fit and after "
             "each fit step.")
    shown = steps if len(steps) <= STEP_ROWS else [
        steps[round(k * (len(steps) - 1) / (STEP_ROWS - 1))] for k in range(STEP_ROWS)]
    doc.table(["iteration", "exploitability", "KL(target || policy)", "log gap", "seconds"],
              [[str(s["step"]), num(s["exploitability"], ".4f"), num(s["target_kl"], ".4f"),
                " -> ".join(f"{g:.3f}" for g in s.get("logit_gaps", [])), f"{s['seconds']:.0f}"] for s in shown])


def _population_section(doc: Document, members: list[PopulationMember], solves: list[PopulationIteration],
                        entries: dict[tuple[int, int], float], half_widths: dict[tuple[int, int], float]) -> None:
    measured = [s for s in solves if s.exploitability is not None]
    doc.heading("Population")
    doc.text("Each solve of the meta-game between the members: the meta-strategy (one weight per member, in the "
             "order added)" + (" and the exact exploitability of the mixture's behaviour policy." if measured else
                               "; the game is too large to measure the mixture's exploitability exactly."))
    doc.table(["iteration", "members", "meta-strategy", "exploitability", "minutes"],
              [[str(s.iteration), str(len(s.meta_strategy)), " ".join(f"{p:.2f}" for p in s.meta_strategy),
                num(s.exploitability, ".4f"), f"{s.seconds / 60:.1f}"] for s in solves])
    doc.table(["member", "name", "checkpoint"], [[str(m.member), m.name, m.checkpoint or ""] for m in members])
    doc.text("The meta-game: the row member's expected return against the column member, both seats averaged"
             + (", sampled from play with the half-width of its 95% interval." if half_widths else ", exact."))
    n = len(members)
    doc.table(["", *map(str, range(n))], [[str(i), *(f"{entries.get((i, j), 0.0):+.3f}" + (
        f" ± {half_widths[i, j]:.3f}" if (i, j) in half_widths else "") for j in range(n))] for i in range(n)])
    if not measured:
        return
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot([s.iteration for s in measured], [s.exploitability for s in measured], marker="o")
    ax.set_xlabel("members added")
    ax.set_ylabel("exploitability of the mixture")
    ax.set_ylim(bottom=0)
    doc.figure(fig, "population.png", "exploitability of the meta-strategy mixture per iteration")


def _evolution_section(doc: Document, store: RunStore, generations: list[Generation], matches: list[MatchRecord],
                       bootstrap: int) -> None:
    doc.heading("Evolution")
    doc.text("Each generation the best version played its opponents, a critic read some of those games, and a "
             "reviser rewrote the playbook; the candidate replaced its parent only if a sequential probability "
             "ratio test on pairs of matches (one seed, seats swapped) said it was better.")
    promotions = {p.version: p for p in store.promotions()}
    rows = []
    for g in generations:
        p = promotions.get(g.candidate)
        rows.append([str(g.generation), f"v{g.parent}", "" if g.candidate is None else f"v{g.candidate}",
                     p.decision if p else (g.event or ""), f"{p.wins}-{p.losses}-{p.ties}" if p else "",
                     num(p.llr if p else None, "+.2f"), f"{g.tokens_in:,} / {g.tokens_out:,}", f"v{g.best}"])
    doc.table(["generation", "from", "candidate", "decision", "pairs won-lost-tied", "log-likelihood ratio",
               "tokens in / out", "best after"], rows)
    ratings, notes = rate_run(matches, bootstrap)
    if ratings is not None:
        doc.heading("Every version and reference rated together", 3)
        doc.table(list(RATING_COLUMNS), rating_rows(ratings, best_first=True))
    for note in notes:
        doc.note(note)
    doc.heading("Playbook history", 3)
    versions = {v.version: v for v in store.playbooks()}
    for g in generations:
        if g.candidate is None:
            doc.details(f"generation {g.generation}: the revision held no rule", g.revision)
            continue
        v = versions[g.candidate]
        decision = promotions[g.candidate].decision if g.candidate in promotions else ""
        diff = v.diff_from(versions[v.parent])
        doc.details(f"v{v.version} from v{v.parent} ({decision}): the diff", "\n".join(diff) or "(no change)")
        doc.details(f"v{v.version}: the critic's feedback it came from", g.feedback)


def _exploitability_section(doc: Document, entries: list[ExploitabilityEntry]) -> None:
    doc.heading("Exploitability over checkpoints")
    doc.text("NashConv: what best responses gain against the policy, summed over seats (0 at a Nash "
             "equilibrium); exploitability is NashConv / 2 in two-player zero-sum games. In sampled "
             "mode the interval is the bootstrap 95% interval over the sampled answers, invalid answers "
             "are played as random moves, and the last column plays each as a forfeit, as the default "
             "rule does in a match.")
    rows = []
    for e in entries:
        rows.append([str(e.step), e.checkpoint or "", num(e.exploitability, ".4f"),
                     f"[{e.interval[0]:.4f}, {e.interval[1]:.4f}]" if e.interval else "",
                     num(e.nash_conv, ".4f"), e.mode, num(e.invalid_rate, ".1%"),
                     num(e.forfeit_exploitability, ".4f")])
    doc.table(["step", "checkpoint", "exploitability", "95% interval", "NashConv", "mode", "invalid answers",
               "with forfeits"], rows)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    use_nash_conv = any(e.exploitability is None for e in entries)
    key = "nash_conv" if use_nash_conv else "exploitability"
    x = [e.step for e in entries]
    y = [getattr(e, key) for e in entries]
    low = [y_k - e.interval[0] if e.interval and not use_nash_conv else 0 for e, y_k in zip(entries, y)]
    high = [e.interval[1] - y_k if e.interval and not use_nash_conv else 0 for e, y_k in zip(entries, y)]
    ax.errorbar(x, y, yerr=[[max(0, v) for v in low], [max(0, v) for v in high]], marker="o", capsize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("NashConv" if use_nash_conv else "exploitability")
    ax.set_ylim(bottom=0)
    doc.figure(fig, "exploitability.png", f"{key} over checkpoints")


def _benchmark_section(doc: Document, stored: dict) -> None:
    report = BenchmarkReport.from_dict(stored)
    doc.heading(f"Benchmark {report.benchmark}")
    doc.text(f"agent {report.agent}; metric: {report.metric}.")
    rows = report.rows()
    doc.table(["by", "key", "score", "95% CI", "n"],
              [[by, key, e.value_text(), e.interval_text(), str(e.n)] for by, key, e in rows])
    doc.text(f"invalid answers: {report.invalid}, forfeits: {report.forfeits}")
    for note in report.notes:
        doc.text(note)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(rows) + 1.2))
    ys = list(range(len(rows)))[::-1]
    ax.errorbar([e.value for _, _, e in rows], ys, xerr=[[max(0, e.value - e.low) for _, _, e in rows],
                                                         [max(0, e.high - e.value) for _, _, e in rows]],
                fmt="o", capsize=3)
    ax.set_yticks(ys, [f"{by}: {key}" for by, key, _ in rows])
    ax.set_xlabel(f"{report.metric} (95% CI)")
    name = "benchmark-" + re.sub(r"[^A-Za-z0-9]+", "-", f"{report.benchmark}-{report.agent}").strip("-") + ".png"
    doc.figure(fig, name, f"{report.benchmark} scores with 95% intervals")

    items = report.items
    if items:
        columns = list(dict.fromkeys(k for item in items[:BENCHMARK_ITEMS] for k in item))
        doc.details_table(f"first {min(len(items), BENCHMARK_ITEMS)} of {len(items)} items", columns,
                          [[cell(item.get(c)) for c in columns] for item in items[:BENCHMARK_ITEMS]])


def _examples_section(doc: Document, store: RunStore, matches: list[MatchRecord], examples: int) -> None:
    first = matches[:examples]
    troubled = [m for m in matches[examples:] if sum(m.invalid) or m.forfeit_by is not None]
    chosen = first + troubled[:examples]
    doc.heading("Example matches")
    doc.text(f"The first {len(first)} matches"
             + (f", and {count(len(chosen) - len(first), 'later one')} with invalid answers" if len(chosen) > len(first) else "")
             + ". Every answer an agent gave is shown as text, exactly as it was written.")
    for match in chosen:
        doc.match(match, store.turns(match.index))
