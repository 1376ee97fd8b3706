"""What ``rnnkit tune`` leaves in its folder besides the best run: the trials table and the
plots of the search (Optuna and matplotlib are imported only here, when a search has run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write(study: Any, folder: Path) -> list[str]:
    """DIR/trials.csv, history.png and importances.png of a study; returns notes on what was
    skipped and why."""
    import pandas as pd

    rows = [{"number": t.number, "state": t.state.name, "value": t.value,
             "seconds": None if t.duration is None else round(t.duration.total_seconds(), 3),
             **{f"params_{k}": v for k, v in sorted(t.params.items())}}
            for t in study.trials]
    pd.DataFrame(rows, columns=None if rows else ["number", "state", "value", "seconds"]
                 ).to_csv(folder / "trials.csv", index=False)
    return _plots(study, folder)


def _plots(study: Any, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([t.number for t in done], [t.value for t in done], "o", label="trial")
    best, line = float("inf"), []
    for t in done:
        best = min(best, t.value)
        line.append(best)
    ax.step([t.number for t in done], line, where="post", color="C3", label="best so far")
    ax.set(xlabel="trial", ylabel="best validation loss", title="optimisation history")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "history.png", dpi=100)
    plt.close(fig)
    importances = _importances(study, len(done))
    if isinstance(importances, str):
        (folder / "importances.png").unlink(missing_ok=True)  # an old one would mislead
        return [importances]
    fig, ax = plt.subplots(figsize=(7, 4))
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names])
    ax.set(xlabel="importance (share of the loss's variation)", title="parameter importances")
    fig.tight_layout()
    fig.savefig(folder / "importances.png", dpi=100)
    plt.close(fig)
    return []


def _importances(study: Any, completed: int) -> dict[str, float] | str:
    """The params' importances, or a note saying why there are none."""
    import warnings

    import optuna

    if completed < 2:
        return f"importances.png skipped: {completed} completed trial(s), need at least 2"
    try:
        with warnings.catch_warnings():
            # "few trials per regime" is what a short study always has; the plot says as much
            warnings.simplefilter("ignore")
            return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError, ZeroDivisionError) as exc:
        return f"importances.png skipped: importances cannot be computed yet ({exc})"
