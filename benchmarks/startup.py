"""CLI start-up: `rnnkit --help` and `rnnkit --version` must not import torch or matplotlib.
Measures both (median of 10 fresh processes) and appends the figures to RESULTS.md."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, check=True)
    return time.perf_counter() - t


def main() -> int:
    probe = ("import sys; from rnnkit.cli.main import build_parser; build_parser(); "
             "print('torch' in sys.modules, 'matplotlib' in sys.modules)")
    heavy = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           check=True).stdout.split()
    py = statistics.median(
        (lambda t: (subprocess.run([sys.executable, "-c", "pass"], check=True),
                    time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(10))
    rows = {a: statistics.median(timed([a]) for _ in range(10)) for a in ("--help", "--version")}
    text = ["", "## CLI start-up", "",
            f"torch imported by the CLI parser: {heavy[0]}; matplotlib: {heavy[1]}.", "",
            "| command | median wall s (10 runs) |", "|---|---|",
            f"| `python -c pass` (interpreter alone) | {py:.3f} |"]
    text += [f"| `rnnkit {a}` | {s:.3f} |" for a, s in rows.items()]
    print("\n".join(text))
    results = HERE / "RESULTS.md"
    if results.exists():
        body = results.read_text().split("\n## CLI start-up")[0].rstrip("\n")
        results.write_text(body + "\n" + "\n".join(text) + "\n")
    return 0 if heavy == ["False", "False"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
