"""``python benchmarks/serve_latency.py [--smoke]``: what a forecast costs over HTTP.

Fits an LSTM(32) on the monthly sunspots (tests/data/sunspots_monthly.csv), then times a
12-step forecast three or four ways: in process (``Run.forecast(12)``), through an onnxruntime
session of the run's exported graph (when ``Run.export`` exists), and as ``POST /forecast``
to a real ``rnnkit serve`` process on a loopback port (one client, keep-alive). Then a
bounded load test: concurrent clients share a fixed number of requests; every one must
succeed. Per-request latency p50 and p99; throughput in requests per second. The clients run
on the same machine as the server, so on a small machine they compete with it for the CPU.

Writes SERVE.md and serve.json (to --out, default benchmarks/). ``--smoke``: tiny sizes, to
check the script runs (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

import rnnkit

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data" / "sunspots_monthly.csv"
STEPS = 12
FULL = {"epochs": 5, "requests": 1000, "clients": 16, "load": 2000}
SMOKE = {"epochs": 1, "requests": 30, "clients": 4, "load": 40}


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean()), "n": len(ms)}


def timed(call: Any, n: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        call()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        out.append(time.perf_counter() - t)
    return out


def onnx_column(run: Any, folder: Path, n: int, expected: np.ndarray) -> dict:
    """The latency of an onnxruntime session of the exported forecast graph, or why not."""
    if not hasattr(run, "export"):
        return {"missing": "Run.export does not exist in this version of rnnkit"}
    try:
        import onnxruntime as ort

        path = Path(run.export(folder / "model.onnx", format="onnx", steps=STEPS))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # a benchmark reports what it could not measure, and goes on
        return {"missing": f"export or session failed: {type(exc).__name__}: {exc}"}
    o = len(run.pipeline.targets)
    history = np.asarray(run.config["tail"]["values"], dtype=np.float64)[None, :, :o]
    feed = {"history": history}
    got = session.run(["forecast"], feed)[0]
    result = percentiles(timed(lambda: session.run(["forecast"], feed), n))
    result["max_abs_diff_vs_run"] = float(np.max(np.abs(got.reshape(-1) - expected)))
    return result


def start_server(folder: Path) -> tuple[subprocess.Popen, str, Path]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = folder.parent / "serve.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "serve", str(folder), "--port",
                                 str(port), "--threads", "1", "--quiet"], stdout=f,
                                stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 120
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return proc, url, log
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start in 120 s")


def load_test(url: str, clients: int, total: int) -> dict:
    """``clients`` threads, each with its own keep-alive connection, share ``total``
    requests; a failure is any answer but 200 or any transport error."""
    per = [total // clients + (i < total % clients) for i in range(clients)]
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            for _ in range(n):
                t = time.perf_counter()
                try:
                    r = c.post("/forecast", json={"steps": STEPS})
                    ok = r.status_code == 200
                    why = f"{r.status_code} {r.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, why = False, f"{type(exc).__name__}: {exc}"
                with lock:
                    latencies.append(time.perf_counter() - t)
                    if not ok:
                        failures.append(why)

    threads = [threading.Thread(target=client, args=(n,)) for n in per]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    return {"clients": clients, "requests": total, "failures": len(failures),
            "first_failure": failures[0] if failures else None, "wall_s": wall,
            "requests_per_s": total / wall, **percentiles(latencies)}


def measure(sizes: dict, work: Path) -> dict:
    folder = work / "sunspots-lstm32"
    t = time.perf_counter()
    rnnkit.fit(DATA, target="sunspot_number", cell="lstm", hidden_size=32,
               epochs=sizes["epochs"], quiet=True, out=folder)
    fit_s = time.perf_counter() - t
    run = rnnkit.load(folder)
    expected = run.forecast(STEPS)["sunspot_number"].to_numpy()
    results: dict[str, Any] = {"in_process": percentiles(timed(lambda: run.forecast(STEPS),
                                                               sizes["requests"]))}
    results["onnxruntime"] = onnx_column(run, work, sizes["requests"], expected)
    proc, url, _ = start_server(folder)
    try:
        with httpx.Client(base_url=url, timeout=60) as c:
            answer = c.post("/forecast", json={"steps": STEPS}).json()
            results["http"] = percentiles(timed(
                lambda: c.post("/forecast", json={"steps": STEPS}).raise_for_status(),
                sizes["requests"]))
        results["http"]["same_as_run"] = bool(np.array_equal(answer["forecast"], expected))
        results["load"] = load_test(url, sizes["clients"], sizes["load"])
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    results["run"] = {"window": int(run.pipeline.window), "diff": bool(run.pipeline.diff),
                      "hidden_size": 32, "cell": "lstm", "epochs": sizes["epochs"],
                      "fit_s": fit_s, "levels": run.config["data"].get("levels")}
    return results


def machine() -> dict:
    import fastapi
    import torch
    import uvicorn

    return {"python": platform.python_version(), "torch": torch.__version__,
            "fastapi": fastapi.__version__, "uvicorn": uvicorn.__version__,
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "server_threads": 1}


def table(doc: dict) -> list[str]:
    r, m, sizes = doc["results"], doc["machine"], doc["sizes"]
    lines = ["# Serving latency: `rnnkit serve` vs in process", "",
             f"`python benchmarks/serve_latency.py{' --smoke' if doc['smoke'] else ''}`: an "
             f"LSTM(32) fitted on the monthly sunspots (epochs {sizes['epochs']}, window "
             f"{r['run']['window']}, intervals {r['run']['levels']}); a {STEPS}-step forecast "
             "with its intervals. Server: `rnnkit serve --threads 1`, on a loopback port, "
             "clients on the same machine.", "",
             "| path | requests | p50 ms | p99 ms |", "|---|---|---|---|"]
    names = {"in_process": f"in process: `Run.forecast({STEPS})`",
             "onnxruntime": "onnxruntime session (exported graph)",
             "http": "HTTP `POST /forecast`, 1 client, keep-alive"}
    for key, name in names.items():
        row = r[key]
        if "missing" in row:
            lines.append(f"| {name} | - | missing: {row['missing']} | |")
        else:
            lines.append(f"| {name} | {row['n']} | {row['p50_ms']:.3f} | {row['p99_ms']:.3f} |")
    load = r["load"]
    lines += ["", "Load test (every request must succeed):", "",
              "| clients | requests | failures | wall s | requests/s | p50 ms | p99 ms |",
              "|---|---|---|---|---|---|---|",
              f"| {load['clients']} | {load['requests']} | {load['failures']} | "
              f"{load['wall_s']:.2f} | {load['requests_per_s']:.0f} | {load['p50_ms']:.2f} | "
              f"{load['p99_ms']:.2f} |", "",
              f"HTTP answer equals `Run.forecast`: {r['http']['same_as_run']}."]
    if "max_abs_diff_vs_run" in r["onnxruntime"]:
        lines.append(f"onnxruntime vs `Run.forecast`, max abs difference: "
                     f"{r['onnxruntime']['max_abs_diff_vs_run']:.3g}.")
    lines += ["", f"Machine: {m['processor']}, {m['cpus']} CPUs; Python {m['python']}, torch "
              f"{m['torch']}, fastapi {m['fastapi']}, uvicorn {m['uvicorn']}."]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (checks the script runs)")
    ap.add_argument("--out", type=Path, default=HERE, help="where SERVE.md and serve.json go")
    args = ap.parse_args()
    sizes = SMOKE if args.smoke else FULL
    with tempfile.TemporaryDirectory() as tmp:
        results = measure(sizes, Path(tmp))
    doc = {"smoke": args.smoke, "sizes": sizes, "steps": STEPS, "machine": machine(),
           "results": results}
    if "missing" in results["onnxruntime"]:
        print(f"onnxruntime column missing: {results['onnxruntime']['missing']}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = table(doc)
    (args.out / "SERVE.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if results["load"]["failures"] == 0 and results["http"]["same_as_run"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
