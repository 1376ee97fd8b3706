"""Coverage of the default fit's prediction intervals on the real series with at least 300 test
points after the default split, and on series whose noise is known or whose volatility moves.

For each series: the default fit (seed 0, 1, 2), then its 80% and 95% intervals scored on the
test part: coverage, mean width, and the interval score of the naive interval (last value ± its
own validation residual quantiles) beside the model's. Each fit is scored twice: with the
default adaptive intervals and with fixed split-conformal ones (``intervals="split"``), on the
same weights (the interval method does not touch training). Writes benchmarks/COVERAGE.md.

    python benchmarks/coverage.py [--seeds 3]
    python benchmarks/coverage.py --learned   # the distribution heads instead, to
                                              # benchmarks/COVERAGE_LEARNED.md
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


LEARNED = {"gaussian": {"loss": "gaussian"}, "student_t": {"loss": "student_t"},
           "quantiles 0.025..0.975": {"quantiles": (0.025, 0.1, 0.5, 0.9, 0.975)}}


def measure_learned(name: str, seed: int) -> dict[str, dict]:
    """{head: metrics} of the seed's fit with each distribution head."""
    import rnnkit

    data, opts = CASES[name]()
    out = {}
    for head, extra in LEARNED.items():
        run = rnnkit.fit(data, seed=seed, quiet=True, **opts, **extra)
        out[head] = {**run.metrics["intervals"], "score": run.metrics["probabilistic"]}
    return out


def learned_table(seeds: range) -> int:
    rows = ["| series | head | test points | coverage 80 | coverage 95 | width 95: model | "
            "width 95: last value | interval score 95: model / last value | CRPS or pinball |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name in [n for n in CASES if "(real)" in n]:  # the simulated ones: tests/test_learned.py
        found = [measure_learned(name, s) for s in seeds]
        for head in LEARNED:
            mine = [f[head] for f in found]
            scores = [m["score"].get("crps", m["score"].get("pinball")) for m in mine]
            spread = f" ± {statistics.stdev(scores):.2g}" if len(scores) > 1 else ""
            rows.append(_row(name, head, mine) + f" {statistics.mean(scores):.4g}{spread} |")
            print(rows[-1], flush=True)
    return _write("COVERAGE_LEARNED.md", "Coverage of the learned distributions",
                  "The real series; fits with each distribution head (`--loss gaussian`, "
            f"`--loss student_t`, "
            f"`--quantiles 0.025,0.1,0.5,0.9,0.975`), seeds 0..{len(seeds) - 1} (mean ± standard "
            "deviation across seeds), otherwise default options; intervals from the learned "
            "distribution, scored on the test part. Written by `python benchmarks/coverage.py "
            "--learned`.", rows)


def _write(name: str, title: str, intro: str, rows: list[str]) -> int:
    (HERE / name).write_text("\n".join([f"# {title}", "", intro, "", *rows, ""]))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--learned", action="store_true")
    args = ap.parse_args()
    seeds = range(args.seeds)
    if args.learned:
        return learned_table(seeds)
    rows = ["| series | intervals | test points | coverage 80 | coverage 95 | width 95: model | "
            "width 95: last value | interval score 95: model / last value |",
            "|---|---|---|---|---|---|---|---|"]
    for name in CASES:
        both = [measure(name, s) for s in seeds]
        for method in ("adaptive", "split"):
            rows.append(_row(name, method, [b[method] for b in both]))
            print(rows[-1], flush=True)
    return _write("COVERAGE.md", "Prediction interval coverage",
                  f"Default fits, seeds 0..{len(seeds) - 1} (mean ± standard deviation across "
            "seeds); "
            "intervals calibrated on the validation part, scored on the test part, adaptive "
            "(the default) and fixed split conformal on the same weights. Written by "
            "`make bench-coverage` (benchmarks/coverage.py).", rows)


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
