"""sunspots: one-step forecasting of the monthly sunspot number (the embedded default).

Fitted on rnnkit's defaults only: the window comes from the detected ~11-year cycle.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

TARGET = "sunspot_number"


def csv_path() -> Path:
    return Path(str(resources.files("rnnkit") / "datasets" / "sunspots_monthly.csv"))


def data_for(run: Any) -> Any:
    from rnnkit.data.read import read_table

    return read_table(csv_path(), target=TARGET)


def run(folder: Path, **overrides: Any) -> dict:
    import rnnkit
    from rnnkit.analysis import analyse

    fit = rnnkit.fit(csv_path(), target=TARGET, **overrides)
    fit.config["source"] = {"kind": "demo", "name": "sunspots", "path": str(csv_path())}
    metrics = fit.metrics
    fit.save(folder, plots=False)
    analyse(fit, folder)  # diagnosis, plots and report, after the figures above
    s = metrics["split"]
    kept = [fit.config["guard"]["note"]] if fit.config.get("guard", {}).get("note") else []
    text = "\n".join([
        f"monthly sunspots, {s['rows']} rows; window {s['window']} (period detected: "
        f"{s['period']}), test {s['test'][0]} .. {s['test'][1]}", *kept, "", fit.table()])
    return {"run": fit, "metrics": metrics, "text": text}
