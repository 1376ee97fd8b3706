"""Coverage of the default fit's prediction intervals on the real series with at least 300 test
points after the default split, and on series whose noise is known or whose volatility moves.

For each series: the default fit (seed 0, 1, 2), then its 80% and 95% intervals scored on the
test part: coverage, mean width, and the interval score of the naive interval (last value ± its
own validation residual quantiles) beside the model's. Each fit is scored twice: with the
default adaptive intervals and with fixed split-conformal ones (``intervals="split"``), on the
same weights (the interval method does not touch training). Writes benchmarks/COVERAGE.md.

    python benchmarks/coverage.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"


def ar1(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e, y = rng.normal(size=n), np.zeros(n)
    for t in range(1, n):
        y[t] = 0.7 * y[t - 1] + e[t]
    return y


def garch_walk(n: int, seed: int = 0) -> np.ndarray:
    """A random walk whose steps follow a GARCH(1,1): calm and wild stretches, as prices have."""
    rng = np.random.default_rng(seed)
    omega, alpha, beta = 0.05, 0.1, 0.88
    var, steps = omega / (1 - alpha - beta), np.zeros(n)
    for t in range(n):
        steps[t] = np.sqrt(var) * rng.normal()
        var = omega + alpha * steps[t] ** 2 + beta * var
    return 100 + np.cumsum(steps)


CASES = {
    "sunspots_monthly (real)": lambda: (DATA / "sunspots_monthly.csv", {}),
    "co2_mauna_loa_weekly (real)": lambda: (DATA / "co2_mauna_loa_weekly.csv",
                                            {"fill": "interpolate"}),
    "AR(1), unit Gaussian noise (simulated, 14,000 rows)": lambda: (ar1(14_000), {}),
    "GARCH(1,1) random walk (simulated, 4,000 rows)": lambda: (garch_walk(4_000), {}),
}


def measure(name: str, seed: int) -> dict[str, dict]:
    """{method: metrics["intervals"]} of the seed's default fit under each interval method."""
    import rnnkit

    data, opts = CASES[name]()
    run = rnnkit.fit(data, seed=seed, quiet=True, **opts)
    out = {"adaptive": run.metrics["intervals"]}
    run.config["data"]["intervals"] = "split"
    run.calibrate()
    out["split"] = run.evaluate()["intervals"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3)
    seeds = range(ap.parse_args().seeds)
    rows = ["| series | intervals | test points | coverage 80 | coverage 95 | width 95: model | "
            "width 95: last value | interval score 95: model / last value |",
            "|---|---|---|---|---|---|---|---|"]
    for name in CASES:
        both = [measure(name, s) for s in seeds]
        for method in ("adaptive", "split"):
            rows.append(_row(name, method, [b[method] for b in both]))
            print(rows[-1], flush=True)
    text = ["# Prediction interval coverage", "",
            f"Default fits, seeds 0..{len(seeds) - 1} (mean ± standard deviation across seeds); "
            "intervals calibrated on the validation part, scored on the test part, adaptive "
            "(the default) and fixed split conformal on the same weights. Written by "
            "`make bench-coverage` (benchmarks/coverage.py).", "", *rows, ""]
    (HERE / "COVERAGE.md").write_text("\n".join(text))
    return 0


def _row(name: str, method: str, found: list[dict]) -> str:
    def stat(level: str, who: str, key: str) -> str:
        vals = [r[level][who][key] * (100 if key == "coverage" else 1) for r in found]
        spread = f" ± {statistics.stdev(vals):.2g}" if len(vals) > 1 else ""
        return f"{statistics.mean(vals):.4g}{spread}"

    return (f"| {name} | {method} | {found[0]['80']['model']['points']} | "
            f"{stat('80', 'model', 'coverage')}% | {stat('95', 'model', 'coverage')}% | "
            f"{stat('95', 'model', 'width')} | {stat('95', 'last value', 'width')} | "
            f"{stat('95', 'model', 'winkler')} / {stat('95', 'last value', 'winkler')} |")


if __name__ == "__main__":
    sys.exit(main())
