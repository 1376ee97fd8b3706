"""``make bench``: every case with rnnkit and its plain-PyTorch reference, alternating runs,
median of N, written to benchmarks/RESULTS.md and benchmarks/results.json.

    python benchmarks/run.py [--repeats 5] [--smoke] [--cases sine,adder] [--out DIR]

Each run is a fresh process (interpreter start-up is excluded by the cases' own clocks), so
peak RSS is per run. Implementations alternate (A B A B ...) so a machine that slows down
mid-way slows both sides alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cases import CASES, THREADS  # noqa: E402 -- after making the folder importable

# (case, numerator impl, denominator impl, target ratio or None, what it means)
RATIOS = [
    ("sine", "rnnkit", "reference", 1.10, "training, RNN tanh (fused)"),
    ("seeded", "rnnkit", "reference", 1.10, "training, LSTM closed loop"),
    ("sunspots", "rnnkit", "reference", 1.10, "training, LSTM windows"),
    ("adder", "rnnkit", "reference_fused_tanh", 3.0, "identity RNN vs fused tanh nn.RNN"),
    ("adder", "rnnkit", "reference_loop", 1.0, "identity RNN vs plain per-step loop"),
    ("generate", "rnnkit", "reference", 1.2, "batched generation"),
    ("stream", "rnnkit", "reference", 1.5, "streaming step vs raw nn.LSTMCell"),
    ("daily5000", "rnnkit", "reference", None, "default fit's training loop, 5,000 daily "
     "rows (1 thread vs the reference's 2)"),
    ("ensemble4", "members8", "single", 2.0, "8 packed LSTM(4) members vs one"),
    ("ensemble32", "members8", "single", 2.0, "8 packed LSTM(32) members vs one"),
]


def run_once(case: str, impl: str, smoke: bool) -> dict:
    cmd = [sys.executable, str(HERE / "cases.py"), case, impl] + (["--smoke"] if smoke else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{case}/{impl} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def versions() -> dict:
    import numpy
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cpus": __import__("os").cpu_count(), "threads": THREADS}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, to check the suite runs")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--out", default=str(HERE))
    a = p.parse_args()
    chosen = [c for c in a.cases.split(",") if c]
    results: dict[str, dict[str, list[dict]]] = {}
    started = time.time()
    for case in chosen:
        impls = CASES[case][1]
        results[case] = {i: [] for i in impls}
        for r in range(a.repeats):
            order = impls if r % 2 == 0 else list(reversed(impls))
            for impl in order:
                results[case][impl].append(run_once(case, impl, a.smoke))
        print(f"{case}: " + ", ".join(
            f"{i} {statistics.median(x['seconds'] for x in results[case][i]):.4g} s"
            for i in impls), flush=True)
    summary = summarise(results)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"versions": versions(), "repeats": a.repeats, "smoke": a.smoke,
           "wall_seconds": round(time.time() - started, 1), "cases": summary["cases"],
           "ratios": summary["ratios"]}
    (out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "RESULTS.md").write_text(markdown(doc) + "\n")
    print(markdown(doc))
    return 0


def summarise(results: dict) -> dict:
    cases = {}
    for case, impls in results.items():
        cases[case] = {}
        for impl, runs in impls.items():
            row = {"median_seconds": statistics.median(r["seconds"] for r in runs),
                   "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
                   "runs": len(runs)}
            if "fit_seconds" in runs[0]:
                row["median_fit_seconds"] = statistics.median(r["fit_seconds"] for r in runs)
            if "rmse" in runs[0]:
                row["rmse"] = statistics.median(r["rmse"] for r in runs)
            if "us_per_step" in runs[0]:
                row["us_per_step"] = statistics.median(r["us_per_step"] for r in runs)
            cases[case][impl] = row
    ratios = []
    for case, num, den, target, what in RATIOS:
        if case in cases and num in cases[case] and den in cases[case]:
            r = cases[case][num]["median_seconds"] / cases[case][den]["median_seconds"]
            ratios.append({"case": case, "what": what, "ratio": r, "target": target,
                           "met": target is None or r <= target, "vs": den})
    daily = cases.get("daily5000", {})
    if "rnnkit" in daily and "median_fit_seconds" in daily["rnnkit"]:
        idle = daily["rnnkit"]
        ratios.append(_ratio("daily5000", "whole default fit vs its own training loop",
                             idle["median_fit_seconds"] / idle["median_seconds"], 1.5, "loop"))
        ratios.append(_ratio("daily5000", "whole default fit, absolute seconds",
                             idle["median_fit_seconds"], 60.0, "-"))
        if "median_fit_seconds" in daily.get("rnnkit_busy", {}):
            ratios.append(_ratio("daily5000", "whole default fit with one busy core vs idle",
                                 daily["rnnkit_busy"]["median_fit_seconds"]
                                 / idle["median_fit_seconds"], 1.5, "idle"))
    return {"cases": cases, "ratios": ratios}


def _ratio(case: str, what: str, r: float, target: float, vs: str) -> dict:
    return {"case": case, "what": what, "ratio": r, "target": target, "met": r <= target,
            "vs": vs}


SMOKE_NOTE = " (SMOKE sizes: not figures to quote)"


def markdown(doc: dict) -> str:
    v = doc["versions"]
    lines = [
        "# rnnkit benchmark results", "",
        f"Machine: {v['processor']}, {v['cpus']} CPUs, torch threads {v['threads']}; Python "
        f"{v['python']}, torch {v['torch']}, numpy {v['numpy']}. Median of {doc['repeats']} "
        f"alternating runs per implementation{SMOKE_NOTE if doc['smoke'] else ''}; "
        f"whole suite {doc['wall_seconds']} s. Written by `make bench` (benchmarks/run.py).", "",
        "## Ratios (rnnkit / reference, lower is better)", "",
        "| case | what | ratio | target | met |", "|---|---|---|---|---|",
    ]
    for r in doc["ratios"]:
        target = "—" if r["target"] is None else f"≤ {r['target']}"
        met = "—" if r["target"] is None else "yes" if r["met"] else "NO"
        lines.append(f"| {r['case']} | {r['what']} (vs {r['vs']}) | {r['ratio']:.3f} | "
                     f"{target} | {met} |")
    lines += ["", "## Timings", "",
              "| case | implementation | median s | whole fit s | µs/step | test RMSE | "
              "peak RSS MB |",
              "|---|---|---|---|---|---|---|"]
    for case, impls in doc["cases"].items():
        for impl, row in impls.items():
            fit = f"{row['median_fit_seconds']:.3f}" if "median_fit_seconds" in row else ""
            us = f"{row['us_per_step']:.1f}" if "us_per_step" in row else ""
            rmse = f"{row['rmse']:.4g}" if "rmse" in row else ""
            lines.append(f"| {case} | {impl} | {row['median_seconds']:.4f} | {fit} | {us} | "
                         f"{rmse} | {row['peak_rss_mb']:.0f} |")
    lines += ["", "rnnkit's training figure is its loop's own clock (`History.seconds`: training "
              "plus the per-epoch validation pass, which the references do too); 'whole fit' adds "
              "reading, pair building, baselines and evaluation."]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
