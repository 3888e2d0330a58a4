"""Learning curves of a training run, drawn from its store."""

from __future__ import annotations

from pathlib import Path

from sparring.errors import SparringError
from sparring.store import RunStore


def read_train_log(run_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """(per-step metrics, evaluations) of a training run, from its store."""
    store = RunStore(run_dir)
    try:
        return store.train_steps(), store.train_evals()
    finally:
        store.close()


def plot_curves(run_dir: str | Path, log: tuple[list[dict], list[dict]] | None = None) -> tuple[Path, list[tuple]]:
    """Write `curves.png` into the run directory (loss, returns, invalid rate and
    evaluations with 95% intervals per step) and return it with the evaluation rows.
    `log` is the run's (steps, evaluations) when the caller has read them already."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    steps, evals = log if log is not None else read_train_log(run_dir)
    if not steps:
        raise SparringError(f"{run_dir} has no training steps yet: train first (sparring train --out {run_dir})")
    if "target_kl" in steps[0]:
        return _plot_mirror(run_dir, steps, plt), []
    x = [s["step"] for s in steps]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    axes[0, 0].plot(x, [s["loss"] for s in steps])
    axes[0, 0].set_title("policy loss")
    # A multi-game run draws one line per game and seat ("kuhn_poker:0"), a one-game run one per seat.
    several = len({role.split(":")[0] for s in steps for role in s.get("mean_return_by_game", {})}) > 1
    key = "mean_return_by_game" if several else "mean_return"
    for role in sorted({role for s in steps for role in s[key]}):
        game, _, seat = role.rpartition(":")
        label = f"{game} seat {int(seat) + 1}" if game else f"seat {int(seat) + 1}"
        axes[0, 1].plot(x, [s[key].get(role) for s in steps], label=label)
    axes[0, 1].set_title("training return per seat" + (" and game" if several else ""))
    axes[0, 1].legend()
    axes[1, 0].plot(x, [s["invalid_rate"] for s in steps])
    axes[1, 0].set_title("invalid answer rate (training)")
    rows = []
    for opponent in dict.fromkeys(e["opponent"] for e in evals):
        points = [e for e in evals if e["opponent"] == opponent]
        # a multi-game run's rows are labelled "GAME vs OPPONENT" already (learn.evaluation.eval_label)
        label = f"vs {opponent}" if points[0].get("against", opponent) == opponent else opponent
        axes[1, 1].errorbar([e["step"] for e in points], [e["win_or_draw"] for e in points],
                            yerr=[e["win_or_draw_ci"] for e in points], capsize=3, label=label)
        for e in points:
            rows.append((e["step"], opponent, f"{e['win_or_draw']:.3f} ± {e['win_or_draw_ci']:.3f}",
                         f"{e['return']:+.3f} ± {e['return_ci']:.3f}", f"{e['invalid']:.3f}"))
    axes[1, 1].set_title("evaluation: win or draw rate (95% CI)")
    if evals:
        axes[1, 1].legend()
    else:
        axes[1, 1].text(0.5, 0.5, "no evaluations in this run (eval_every=0)", ha="center", va="center")
    for ax in axes.flat:
        ax.set_xlabel("step")
    fig.tight_layout()
    png = Path(run_dir) / "curves.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png, rows


def _plot_mirror(run_dir: str | Path, steps: list[dict], plt) -> Path:
    """A mirror descent run: the exact exploitability of the policy each iteration
    starts from, and the squared log gap to each iteration's target before and after
    its fit."""
    x = [s["step"] for s in steps]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot(x, [s["exploitability"] for s in steps], marker=".")
    axes[0].set_yscale("log")
    axes[0].set_title("exploitability of the model's policy (exact)")
    axes[1].plot(x, [s["logit_gaps"][0] for s in steps], label="before the fit")
    axes[1].plot(x, [s["logit_gaps"][-1] for s in steps], label="after")
    axes[1].set_yscale("log")
    axes[1].set_title("squared log gap to the iteration's target")
    axes[1].legend()
    for ax in axes:
        ax.set_xlabel("iteration")
    fig.tight_layout()
    png = Path(run_dir) / "curves.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png
