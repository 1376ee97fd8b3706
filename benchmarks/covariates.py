"""What calendar features add on a real series (issue 15): daily Seattle maximum temperature.

Its yearly season (365 days) is longer than any sensible window, so a model that sees only
the last weeks cannot know where in the year it is; day-of-year features tell it. Fitted on
tests/data/seattle_weather_daily.csv (1,461 days, 2012-2015, 70/15/15 split), seeds 0, 1, 2,
with ``--calendar auto`` (what the validation check keeps), ``dayofyear,weekday`` (forced on)
and ``none``. Scored at 1 day ahead (the test part's one-step RMSE) and 30 days ahead (a
backtest from 20 origins over the test part, each rolled 30 days: the RMSE over all 30 steps
and at step 30 alone), next to the best univariate baseline. Writes benchmarks/COVARIATES.md
and benchmarks/covariates.json.

    python benchmarks/covariates.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data" / "seattle_weather_daily.csv"
VARIANTS = {"auto": "auto", "forced": ["dayofyear", "weekday"], "none": "none"}
AHEAD = 30
ORIGINS = 20


def one(variant: str, seed: int) -> dict:
    import rnnkit
    from rnnkit.evaluate.backtest import backtest

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = rnnkit.fit(DATA, target="temp_max", quiet=True, seed=seed,
                         calendar=VARIANTS[variant])
    seconds = time.perf_counter() - start
    bt = backtest(run, k=ORIGINS, steps=AHEAD)
    base = {k: v["rmse"] for k, v in run.metrics["baselines"].items()}
    best = min(base, key=base.get)
    far = {k: v["rmse"] for k, v in bt.overall.items() if k != "model"}
    far_best = min(far, key=far.get)
    return {"variant": variant, "seed": seed, "calendar": list(run.pipeline.known.calendar),
            "rmse_1": run.metrics["model"]["rmse"], "best_1": best, "best_rmse_1": base[best],
            "rmse_30": bt.overall["model"]["rmse"], "rmse_step30": bt.per_step["model"][-1]["rmse"],
            "best_30": far_best, "best_rmse_30": far[far_best],
            "test_points": run.metrics["split"]["forecasts_scored"], "seconds": seconds}


def _ms(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def table(rows: list[dict], seeds: int) -> str:
    out = [f"| calendar | kept (seed 0) | 1-day RMSE, mean ± sd over {seeds} seeds | best "
           "baseline, 1 day | 30-day RMSE (steps 1-30) | at step 30 | best baseline, 30 days "
           "| fit s |", "|---|---|---|---|---|---|---|---|"]
    for variant in VARIANTS:
        mine = [r for r in rows if r["variant"] == variant]
        if not mine:
            continue
        f = mine[0]
        out.append(f"| {variant} | {', '.join(f['calendar']) or 'none'} | "
                   f"{_ms([r['rmse_1'] for r in mine])} | {f['best_1']} {f['best_rmse_1']:.3f} | "
                   f"{_ms([r['rmse_30'] for r in mine])} | "
                   f"{_ms([r['rmse_step30'] for r in mine])} | {f['best_30']} "
                   f"{f['best_rmse_30']:.3f} | "
                   f"{statistics.mean(r['seconds'] for r in mine):.1f} |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()
    rows = [one(v, s) for v in VARIANTS for s in range(args.seeds)]
    text = ("# Calendar features on a real series\n\n" + __doc__.split("\n\n")[1].strip()
            + "\n\n" + table(rows, args.seeds) + "\n")
    (HERE / "COVARIATES.md").write_text(text)
    (HERE / "covariates.json").write_text(json.dumps(rows, indent=1))
    print(text)


if __name__ == "__main__":
    main()
