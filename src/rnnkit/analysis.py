"""The steps ``fit`` runs after saving a run: diagnosis, plots and the HTML report (with its
backtest). Each lives in its own module; this one only puts them in order, so a user who
saved a run by hand can call the same steps (``analyse(run, folder)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnkit.lock import writing

BACKTEST_ORIGINS = 8  # origins of the report's backtest: enough to see it, quick to run


def analyse(run: Any, folder: str | Path, plots: bool = True) -> Path:
    """Diagnose ``run`` (unless it was), add the findings to ``folder/metrics.json``, run the
    report's backtest, and write the plots and ``report.html`` there. The weights are already
    on disk (``Run.save``), so a failing check never loses a fit."""
    folder = Path(folder)
    with writing(folder):
        if run.findings is None:
            run.diagnose()
        run.save_metrics(folder)
        if plots:
            figures(run, folder, report_backtest(run))
    return folder


def figures(run: Any, folder: str | Path, backtest: Any = None) -> None:
    """The plots and ``report.html`` of what ``run`` holds (and of ``backtest``, if given)."""
    from rnnkit import plots as plotting
    from rnnkit.html_report import write_report
    from rnnkit.run_plots import save_run_plots

    folder = Path(folder)
    save_run_plots(run, folder)
    if backtest is not None:
        table = run.data.dataset
        plotting.backtest(table.index, table.values, backtest, run.pipeline.targets[0],
                          folder / "backtest.png")
    write_report(run, folder, backtest)


def report_backtest(run: Any) -> Any:
    """The report's rolling-origin backtest of a series run with its data, or None where
    there is none to run (sequences, panels, a split too short, features without a future)."""
    if run.kind != "series" or run.data is None:
        return None
    from rnnkit.errors import ConfigError, DataError
    from rnnkit.evaluate.backtest import backtest

    try:
        return backtest(run, k=BACKTEST_ORIGINS)
    except (ConfigError, DataError):
        return None
