"""The benchmark suite runs end to end (tiny sizes, one repeat): `make bench` must not rot.
Figures from this smoke run are not checked -- timings are never unit-tested."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_bench_smoke_writes_results(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--smoke", "--repeats", "1",
                           "--cases", "sunspots,adder,stream", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert {r["case"] for r in doc["ratios"]} == {"sunspots", "adder", "stream"}
    assert all(r["ratio"] > 0 for r in doc["ratios"])
    assert "| adder |" in (tmp_path / "RESULTS.md").read_text()


def test_scaling_smoke_writes_table_and_plot(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH / "scaling.py"), "--smoke", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((tmp_path / "scaling.json").read_text())
    assert len(rows) == 4 and all(r["windows"] > 0 for r in rows)
    assert (tmp_path / "scaling.png").stat().st_size > 5000


def test_cli_startup_does_not_import_torch():
    probe = ("import sys; from rnnkit.cli.main import build_parser; build_parser(); "
             "print('torch' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def test_serve_latency_smoke_writes_its_table(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH / "serve_latency.py"), "--smoke", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "serve.json").read_text())
    assert doc["results"]["load"]["failures"] == 0, doc["results"]["load"]
    assert "POST /forecast" in (tmp_path / "SERVE.md").read_text()
