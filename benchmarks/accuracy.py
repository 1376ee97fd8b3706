"""Is the default fit ever worse than the best simple model? (issue 13)

Every real series in tests/data (the Nile, monthly sunspots, weekly CO2 and each of the 12
quarterly US macro columns): the default fit under the 70/15/15 split, seeds 0, 1, 2 (the
fits differ only in the network's initial weights and batch order), against the best on the
test part of: mean, last value, seasonal naive, linear AR (order and ridge chosen on
validation) and ETS (form chosen by AICc). The target is a test RMSE at most 1.02 x that best.
Also written: what the guard kept (train/guard.py) and the fit's seconds. Writes
benchmarks/ACCURACY.md and benchmarks/accuracy.json.

    python benchmarks/accuracy.py [--seeds 3] [--only nile,realgdp]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"
TARGET = 1.02
MACRO = ["realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "tbilrate",
         "unemp", "pop", "infl", "realint"]
CASES = {
    "nile": (DATA / "nile_yearly.csv", "flow_1e8_m3", {}),
    "sunspots": (DATA / "sunspots_monthly.csv", "sunspot_number", {}),
    "co2": (DATA / "co2_mauna_loa_weekly.csv", "co2_ppmv", {"fill": "interpolate"}),
    **{c: (DATA / "us_macro_quarterly.csv", c, {}) for c in MACRO},
}


def one(name: str, seed: int) -> dict:
    import rnnkit

    path, target, opts = CASES[name]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few test points on the short series: known
        run = rnnkit.fit(path, target=target, quiet=True, seed=seed, **opts)
    seconds = time.perf_counter() - start
    base = {k: v["rmse"] for k, v in run.metrics["baselines"].items()}
    best = min(base, key=base.get)
    model = run.metrics["model"]["rmse"]
    return {"series": name, "seed": seed, "model": model, "best": best, "best_rmse": base[best],
            "ratio": model / base[best], "chosen": run.config["guard"].get("chosen"),
            "test_points": run.metrics["split"]["forecasts_scored"], "seconds": seconds,
            "baselines": base}


def table(rows: list[dict], seeds: int) -> str:
    out = ["| series | test pts | model RMSE (seed 0) | best simple model | its RMSE | ratio "
           f"mean ± sd over {seeds} seeds | max | ≤ {TARGET} | kept by the guard (seed 0) | "
           "fit s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["series"] for r in rows):
        mine = [r for r in rows if r["series"] == name]
        ratios = [r["ratio"] for r in mine]
        sd = statistics.stdev(ratios) if len(ratios) > 1 else 0.0
        first = mine[0]
        ok = "yes" if max(ratios) <= TARGET else "**no**"
        out.append(f"| {name} | {first['test_points']} | {first['model']:.4g} | {first['best']} "
                   f"| {first['best_rmse']:.4g} | {statistics.mean(ratios):.3f} ± {sd:.3f} | "
                   f"{max(ratios):.3f} | {ok} | {first['chosen']} | "
                   f"{statistics.mean(r['seconds'] for r in mine):.1f} |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--only", default=None)
    args = p.parse_args()
    names = args.only.split(",") if args.only else list(CASES)
    rows = []
    for name in names:
        for seed in range(args.seeds):
            rows.append(one(name, seed))
            r = rows[-1]
            print(f"{name} seed {seed}: {r['model']:.4g} vs {r['best']} {r['best_rmse']:.4g} "
                  f"= {r['ratio']:.3f} ({r['chosen']}, {r['seconds']:.1f} s)", flush=True)
    passed = sum(max(r["ratio"] for r in rows if r["series"] == n) <= TARGET for n in names)
    text = (f"# Default fit against the best simple model\n\nWritten by `python "
            f"benchmarks/accuracy.py --seeds {args.seeds}` (see its docstring). Test RMSE under "
            f"the 70/15/15 split; the ratio is the model's over the best simple model's on the "
            f"same test part. {passed} of {len(names)} series meet ≤ {TARGET} at every seed.\n\n"
            + table(rows, args.seeds) + "\n")
    if not args.only:
        (HERE / "ACCURACY.md").write_text(text)
        (HERE / "accuracy.json").write_text(json.dumps(rows, indent=1))
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
