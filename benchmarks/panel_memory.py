"""``make bench-panel``: peak memory of a panel fit for 1k, 10k and 100k series of length 500.

Each size runs in a fresh process. The long table (``unique_id`` categorical, ``ds`` integer
steps, ``y`` float64: what a Parquet panel reads into) is built first; then a sampler thread
reads the process's resident memory every 5 ms while ``rnnkit.fit`` runs (read -> per-series
scaling -> windows -> one epoch of ``windows_per_epoch`` windows -> evaluation on every
series' test windows). Reported: the peak above the memory held before the fit, next to the
table's own size, the float32 series buffer, and what the training windows would take if they
were copied instead of viewed. Writes benchmarks/PANEL_MEMORY.md and panel_memory.json.

``--covariates`` measures the same panels with and without covariates, each fit in a fresh
process: three future-known float columns (``--future-features``; ``ds`` is integer steps, so
no calendar) and two static columns (``region``, categorical with 4 values, and ``size``,
numeric; ``--static``), the table holding them on every row as a long table does; ``--cases``
picks which of none, static, future and both are fitted. Writes panel_memory_covariates.json
and a second table in PANEL_MEMORY.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = [1_000, 10_000, 100_000]
LENGTH = 500
WINDOW = 24
OPTIONS = {"window": WINDOW, "epochs": 1, "windows_per_epoch": 50_000, "batch_size": 256,
           "early_stopping": 0, "hidden_size": 32, "quiet": True, "seed": 0}


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def point(series: int, case: str = "none", threads: int = 2) -> dict:
    import numpy as np
    import pandas as pd
    import torch

    import rnnkit

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    n = series * LENGTH
    t = np.tile(np.arange(LENGTH, dtype=np.int64), series)
    level = np.repeat(10 ** rng.uniform(0, 4, series), LENGTH)
    phase = np.repeat(rng.uniform(0, 2 * np.pi, series), LENGTH)
    y = level * (1 + 0.4 * np.sin(2 * np.pi * t / 12 + phase))
    del level, phase
    y += 0.02 * rng.standard_normal(n) * y
    ids = pd.Categorical.from_codes(np.repeat(np.arange(series, dtype=np.int32), LENGTH),
                                    [f"s{i:06d}" for i in range(series)])
    df = pd.DataFrame({"unique_id": ids, "ds": t, "y": y})
    del t, y, ids
    options = dict(OPTIONS)
    if case != "none":
        _add_covariates(df, rng, series)
        options.update(future_features=FUTURE if case in ("future", "both") else [],
                       static=STATIC if case in ("static", "both") else [])
    # a tiny fit first: torch's optimizer and compiler imports (~150 MB, once per process) are
    # not memory that grows with the data
    rnnkit.fit(df.iloc[: 3 * LENGTH], **{**options, "windows_per_epoch": 256})
    table_mb = df.memory_usage(deep=True).sum() / 2**20
    import gc

    gc.collect()
    before = rss_mb()
    peak = [before]
    running = [True]

    def sample() -> None:
        while running[0]:
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    trained = TrainedPeak(peak)
    run = rnnkit.fit(df, **options, callbacks=[trained])
    seconds = time.perf_counter() - started
    running[0] = False
    sampler.join()
    peak[0] = max(peak[0], rss_mb())
    buffer_mb = n * 4 / 2**20
    pipe = run.pipeline
    # training origins per series: rows window-1 (+1 with diff) .. train_end - horizon - 1
    windows = series * max(0, round(LENGTH * pipe.split_fracs[0]) - WINDOW - int(pipe.diff))
    return {"series": series, "covariates": case, "length": LENGTH, "rows": n,
            "inputs_per_step": run.model.cfg.input_size, "table_mb": round(table_mb, 1),
            "buffer_mb": round(buffer_mb, 1), "rss_before_mb": round(before, 1),
            "peak_growth_mb": round(peak[0] - before, 1),
            "peak_to_trained_mb": round(trained.seen - before, 1),
            "growth_per_buffer_mb": round((peak[0] - before) / buffer_mb, 2),
            "train_windows": windows,
            "copied_windows_mb": round(windows * WINDOW * 4 / 2**20, 1),
            "fit_seconds": round(seconds, 1), "rmse": run.metrics["model"]["rmse"],
            "best_baseline_rmse": min(b["rmse"] for b in run.metrics["baselines"].values())}


class TrainedPeak:
    """A fit callback keeping the peak sampled up to the end of training (read, scaling,
    windows, the epoch), before calibration and evaluation."""

    def __init__(self, peak: list[float]) -> None:
        self.peak, self.seen = peak, float("nan")

    def on_train_begin(self, state: object) -> None:
        pass

    def on_epoch_end(self, state: object) -> None:
        pass

    def on_train_end(self, state: object) -> None:
        self.seen = max(self.peak[0], rss_mb())


FUTURE = ["price", "promo", "holiday"]
STATIC = ["region", "size"]


def _add_covariates(df: object, rng: object, series: int) -> None:
    """Three future-known columns per row and two static columns per series (repeated on
    every row, as a long table has them)."""
    import numpy as np
    import pandas as pd

    n = series * LENGTH
    df["price"] = rng.uniform(1, 2, n)
    df["promo"] = (rng.random(n) < 0.1).astype(np.float64)
    df["holiday"] = (rng.random(n) < 0.03).astype(np.float64)
    codes = np.repeat(np.arange(series) % 4, LENGTH)
    df["region"] = pd.Categorical.from_codes(codes, ["north", "south", "east", "west"])
    df["size"] = np.repeat(rng.uniform(50, 500, series).round(), LENGTH)


CASES = {"none": "none", "static": "2 static", "future": "3 future", "both": "3 future + 2 static"}


def _measure(sizes: list[int], case: str, threads: int = 2) -> list[dict]:
    results = []
    # OMP_NUM_THREADS caps the threads a fit takes (train/threads.py) at the same count
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    for s in sizes:
        cmd = [sys.executable, __file__, "--point", str(s), "--case", case,
               "--threads", str(threads)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        results.append({**json.loads(out.stdout.strip().splitlines()[-1]), "threads": threads})
        print(results[-1], flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--point", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--covariates", action="store_true",
                    help="measure each size with and without covariates (see the docstring)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="with --covariates: fresh processes per case; the table shows medians")
    ap.add_argument("--cases", default="none,both", help="with --covariates: which of "
                    f"{', '.join(CASES)} to fit (none comes first: the ratios are to it)")
    ap.add_argument("--case", default="none", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=2,
                    help="torch threads of each fit (1 on a machine other jobs keep busy: "
                    "two threads then spin-wait; memory hardly depends on it)")
    args = ap.parse_args()
    if args.point:
        print(json.dumps(point(args.point, args.case, args.threads)))
        return
    sizes = [int(x) for x in args.sizes.split(",")]
    if args.covariates:
        cases = ["none", *[c for c in args.cases.split(",") if c != "none"]]
        runs = [{c: _measure(sizes, c, args.threads) for c in cases} for _ in range(args.repeat)]
        (HERE / "panel_memory_covariates.json").write_text(
            json.dumps([r for one in runs for c in cases for r in one[c]], indent=2) + "\n")
        rows = [[_median([one[c][i] for one in runs]) for c in cases] for i in range(len(sizes))]
        _covariate_table(rows, f"--repeat {args.repeat} --cases {args.cases} "
                         f"--threads {args.threads}")
        return
    results = _measure(sizes, "none", args.threads)
    (HERE / "panel_memory.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["# Panel memory", "",
             f"`make bench-panel`: `rnnkit.fit` on synthetic panels of series of length "
             f"{LENGTH}, window {WINDOW}, one epoch of {OPTIONS['windows_per_epoch']:,} windows "
             "(`windows_per_epoch`), then evaluation on every series' test windows. Peak growth "
             "is the resident memory above what the process held before the fit (the table "
             "itself, and torch's one-off imports from a tiny warm-up fit, are in that "
             "baseline), sampled every 5 ms.", "",
             "| series | rows | table MB | float32 buffer MB | peak growth MB | growth / buffer "
             "| training windows | if copied MB | fit s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['series']:,} | {r['rows']:,} | {r['table_mb']} | {r['buffer_mb']} | "
                     f"{r['peak_growth_mb']} | {r['growth_per_buffer_mb']} | "
                     f"{r['train_windows']:,} | {r['copied_windows_mb']:,} | "
                     f"{r['fit_seconds']} |")
    path = HERE / "PANEL_MEMORY.md"
    old = path.read_text() if path.exists() else ""
    kept = old[old.index(COVARIATES_HEAD) :] if COVARIATES_HEAD in old else ""
    path.write_text("\n".join(lines) + "\n" + ("\n" + kept if kept else ""))


COVARIATES_HEAD = "## With covariates"


def _median(results: list[dict]) -> dict:
    """The median of each memory and time figure over repeated runs, with their ranges."""
    import numpy as np

    out = dict(results[0], runs=len(results))
    for key in ("peak_growth_mb", "peak_to_trained_mb", "fit_seconds"):
        values = [r[key] for r in results]
        out[key] = round(float(np.median(values)), 1)
        out[f"{key}_range"] = (min(values), max(values))
    return out


def _covariate_table(rows: list[list[dict]], flags: str) -> None:
    """The with/without table, written under COVARIATES_HEAD (replacing an earlier one);
    ``flags``: the options it was measured with."""
    lines = [COVARIATES_HEAD, "",
             f"`python benchmarks/panel_memory.py --covariates --sizes 10000 {flags}`: the "
             "panel above "
             f"with three future-known columns ({', '.join(FUTURE)}; `future_features`) and two "
             "static columns (`region`, categorical with 4 values, and `size`, numeric; "
             "`static`), measured the same way, each fit in a fresh process, the one without "
             "covariates in the same session. The table (the columns on every row) is in the "
             "baseline; what grows is the values (one column per known covariate, float32 or, "
             "with at most 32,768 distinct values, exact one- or two-byte codes: their leads "
             "are built per batch), the buffer (targets only: the known columns are scaled per "
             "batch) and the statics (one row per series). The `none` row is the "
             "first table's panel fitted by today's code: its 10,000-series figure there was "
             "measured before the prediction intervals (calibrated on every validation forecast, "
             "scored on the test forecasts) were added to every fit.", "",
             "| series | covariates | inputs per step | table MB | runs | peak growth to trained "
             "MB, median (range) | peak growth MB, median (range) | ratio | fit s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for same in rows:
        plain = same[0]
        for r in same:
            ratio = r["peak_growth_mb"] / plain["peak_growth_mb"]
            kind = CASES[r["covariates"]]
            lines.append(f"| {r['series']:,} | {kind} | {r['inputs_per_step']} | "
                         f"{r['table_mb']} | {r.get('runs', 1)} | "
                         f"{_cell(r, 'peak_to_trained_mb')} | "
                         f"{_cell(r, 'peak_growth_mb')} | {ratio:.2f} | {r['fit_seconds']} |")
    path = HERE / "PANEL_MEMORY.md"
    old = path.read_text() if path.exists() else ""
    cut = old.index(COVARIATES_HEAD) if COVARIATES_HEAD in old else len(old)
    head = old[:cut].rstrip()
    path.write_text(head + "\n\n" + "\n".join(lines) + "\n")


def _cell(r: dict, key: str) -> str:
    lo, hi = r.get(f"{key}_range", (r[key], r[key]))
    return f"{r[key]}" + (f" ({lo}-{hi})" if lo != hi else "")


if __name__ == "__main__":
    main()
