"""``make bench-panel``: peak memory of a panel fit for 1k, 10k and 100k series of length 500.

Each size runs in a fresh process. The long table (``unique_id`` categorical, ``ds`` integer
steps, ``y`` float64: what a Parquet panel reads into) is built first; then a sampler thread
reads the process's resident memory every 5 ms while ``rnnkit.fit`` runs (read -> per-series
scaling -> windows -> one epoch of ``windows_per_epoch`` windows -> evaluation on every
series' test windows). Reported: the peak above the memory held before the fit, next to the
table's own size, the float32 series buffer, and what the training windows would take if they
were copied instead of viewed. Writes benchmarks/PANEL_MEMORY.md and panel_memory.json.
"""

from __future__ import annotations

import argparse
import json
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


def point(series: int) -> dict:
    import numpy as np
    import pandas as pd
    import torch

    import rnnkit

    torch.set_num_threads(2)
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
    # a tiny fit first: torch's optimizer and compiler imports (~150 MB, once per process) are
    # not memory that grows with the data
    rnnkit.fit(df.iloc[: 3 * LENGTH], **{**OPTIONS, "windows_per_epoch": 256})
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
    run = rnnkit.fit(df, **OPTIONS)
    seconds = time.perf_counter() - started
    running[0] = False
    sampler.join()
    peak[0] = max(peak[0], rss_mb())
    buffer_mb = n * 4 / 2**20
    pipe = run.pipeline
    # training origins per series: rows window-1 (+1 with diff) .. train_end - horizon - 1
    windows = series * max(0, round(LENGTH * pipe.split_fracs[0]) - WINDOW - int(pipe.diff))
    return {"series": series, "length": LENGTH, "rows": n, "table_mb": round(table_mb, 1),
            "buffer_mb": round(buffer_mb, 1), "rss_before_mb": round(before, 1),
            "peak_growth_mb": round(peak[0] - before, 1),
            "growth_per_buffer_mb": round((peak[0] - before) / buffer_mb, 2),
            "train_windows": windows,
            "copied_windows_mb": round(windows * WINDOW * 4 / 2**20, 1),
            "fit_seconds": round(seconds, 1), "rmse": run.metrics["model"]["rmse"],
            "best_baseline_rmse": min(b["rmse"] for b in run.metrics["baselines"].values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--point", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = ap.parse_args()
    if args.point:
        print(json.dumps(point(args.point)))
        return
    results = []
    for s in (int(x) for x in args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--point", str(s)], capture_output=True,
                             text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(results[-1], flush=True)
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
    (HERE / "PANEL_MEMORY.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
