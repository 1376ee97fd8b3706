"""``make bench-scaling``: how training cost grows with series length, window, hidden size and
batch size. Writes benchmarks/SCALING.md, benchmarks/scaling.json and benchmarks/scaling.png.

Each point runs in a fresh process: rnnkit's own pipeline (read -> pairs -> scale) builds every
training window of a float32 series as a view, then rnnkit's training loop runs. When an epoch
would exceed ``MAX_BATCHES`` batches, the loop runs on a random sample of that many batches and
the epoch time is extrapolated (marked "est."); peak RSS is always that of the full pipeline
with all windows in place, which is what the memory target is about:
peak RSS - baseline <= 3 x the series' float32 bytes (+ a fixed overhead).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAX_BATCHES = 150
BASE = {"n": 100_000, "window": 64, "hidden": 32, "batch": 64}
SWEEPS = {
    "n": [10**3, 10**4, 10**5, 10**6, 10**7],
    "window": [16, 32, 64, 128, 256],
    "hidden": [8, 32, 128, 256],
    "batch": [16, 64, 256, 1024],
}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def point(n: int, window: int, hidden: int, batch: int) -> dict:
    import numpy as np
    import torch

    from rnnkit.config import DataConfig, ModelConfig, TrainConfig
    from rnnkit.data.read import read_table
    from rnnkit.data.series import SeriesPipeline
    from rnnkit.models.network import RecurrentNet
    from rnnkit.train import objectives
    from rnnkit.train.loop import train
    from rnnkit.train.threads import most_threads

    torch.set_num_threads(min(2, most_threads()))  # OMP_NUM_THREADS=1: the tests' smoke run
    torch.manual_seed(0)
    RecurrentNet(ModelConfig(hidden_size=hidden, window=window))  # warm the allocator
    base = rss_mb()
    # built in place, one float32 buffer: the benchmark's own temporaries must not be counted
    # as rnnkit's memory
    series = np.arange(n, dtype=np.float32)
    series *= 0.05
    np.sin(series, out=series)
    rng = np.random.default_rng(0)
    for s in range(0, n, 1 << 20):
        chunk = series[s : s + (1 << 20)]
        chunk += 0.1 * rng.standard_normal(len(chunk), dtype=np.float32)
    table = read_table(series)
    pipe, _ = SeriesPipeline.fit(table, DataConfig(
        window=window, transform="none", period=126, split=(0.8, 0.2, 0.0)))
    pairs = pipe.pairs(pipe.encode(table), "train")
    n_windows = len(pairs)
    batches = -(-n_windows // batch)
    estimated = batches > MAX_BATCHES
    run_pairs = pairs
    if estimated:
        pick = torch.randperm(n_windows, generator=torch.Generator().manual_seed(0),
                              dtype=torch.int32)
        run_pairs = pairs.take(pick[: MAX_BATCHES * batch])
    model = RecurrentNet(ModelConfig(hidden_size=hidden, window=window, linear_path=False))
    cfg = TrainConfig(epochs=1, batch_size=batch, quiet=True, early_stopping=0, lr_patience=0)
    t = time.perf_counter()
    hist = train(model, run_pairs, None, cfg, objectives.last)
    elapsed = time.perf_counter() - t
    first_eval = hist.records[1]["seconds"] - hist.records[0]["seconds"]  # the epoch alone
    epoch = first_eval * (batches / MAX_BATCHES if estimated else 1.0)
    return {"n": n, "window": window, "hidden": hidden, "batch": batch, "windows": n_windows,
            "epoch_seconds": epoch, "estimated": estimated, "loop_seconds": elapsed,
            "base_rss_mb": base, "peak_rss_mb": rss_mb(), "series_mb": n * 4 / 2**20}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--point", help="internal: n,window,hidden,batch")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", default=str(HERE))
    a = p.parse_args()
    if a.point:
        print(json.dumps(point(*[int(x) for x in a.point.split(",")])))
        return 0
    sweeps = {"n": [10**3, 10**4], "window": [16, 32]} if a.smoke else SWEEPS
    rows = []
    for dim, values in sweeps.items():
        for v in values:
            cfg = {**BASE, dim: v}
            arg = ",".join(str(cfg[k]) for k in ("n", "window", "hidden", "batch"))
            proc = subprocess.run([sys.executable, __file__, "--point", arg],
                                  capture_output=True, text=True, timeout=1800)
            if proc.returncode:
                raise RuntimeError(proc.stderr[-2000:])
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["sweep"] = dim
            rows.append(row)
            print(f"{dim}={v}: epoch {row['epoch_seconds']:.3g} s"
                  f"{' (est.)' if row['estimated'] else ''}, peak RSS {row['peak_rss_mb']:.0f} MB"
                  f" (base {row['base_rss_mb']:.0f})", flush=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "SCALING.md").write_text(markdown(rows) + "\n")
    plot(rows, out / "scaling.png")
    print(markdown(rows))
    return 0


def markdown(rows: list[dict]) -> str:
    lines = ["# How training cost grows", "",
             "LSTM, one-step windows, float32 series, 2 torch threads; one epoch over every "
             "training window (80% of the series). 'est.' = extrapolated from "
             f"{MAX_BATCHES} batches. Memory: peak RSS above the process's baseline after "
             "imports, against the series' own float32 bytes.", "",
             "Growth: how much peak RSS rises per byte of series, the slope between each "
             "series length and the previous one (fixed costs -- training buffers, optimizer "
             "state, thread pools -- cancel out); the target is <= 3 at 10^7 points.", "",
             "| sweep | n | window | hidden | batch | windows | s / epoch | peak RSS MB | "
             "above baseline MB | growth (MB per series MB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    prev = None
    for r in rows:
        extra = r["peak_rss_mb"] - r["base_rss_mb"]
        growth = "-"
        if r["sweep"] == "n" and prev is not None and r["series_mb"] - prev[1] >= 1:
            growth = f"{(extra - prev[0]) / (r['series_mb'] - prev[1]):.2f}"
        if r["sweep"] == "n":
            prev = (extra, r["series_mb"])
        lines.append(
            f"| {r['sweep']} | {r['n']:,} | {r['window']} | {r['hidden']} | {r['batch']} | "
            f"{r['windows']:,} | {r['epoch_seconds']:.3g}{' est.' if r['estimated'] else ''} | "
            f"{r['peak_rss_mb']:.0f} | {extra:.0f} | {growth} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = [d for d in SWEEPS if any(r["sweep"] == d for r in rows)]
    fig, axes = plt.subplots(1, len(dims), figsize=(4 * len(dims), 3.6), squeeze=False)
    for ax, dim in zip(axes[0], dims, strict=True):
        pts = [r for r in rows if r["sweep"] == dim]
        xs = [r[dim] for r in pts]
        ax.loglog(xs, [r["epoch_seconds"] for r in pts], "o-", label="s / epoch")
        ax.set_xlabel(dim)
        ax.set_title(f"cost vs {dim}")
        ax2 = ax.twinx()
        ax2.plot(xs, [r["peak_rss_mb"] - r["base_rss_mb"] for r in pts], "s--", color="tab:red",
                 label="RSS above baseline (MB)")
        ax2.set_ylabel("MB above baseline", color="tab:red")
        ax.set_ylabel("seconds per epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    raise SystemExit(main())
