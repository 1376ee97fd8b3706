"""Period detection on long series: ``detect_period`` reads the training part of every series
fit, so its cost on 10^6 points must stay under one second (``BUDGET_S``). Timing is a
benchmark's job, not a unit test's (tests/test_stats.py checks only the answers).

    python benchmarks/period.py [--repeats 7] [--points 1000000] [--out DIR]

Median wall seconds of ``repeats`` calls on white noise (the slowest case: no period on the
detrended series, so the differences are searched too) and on a noisy sine; the table goes into
its own section of DIR/RESULTS.md (the benchmarks folder by default), replacing an older one.
Exit 1 when a median is over the budget.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from rnnkit.data.stats import detect_period

HERE = Path(__file__).resolve().parent
BUDGET_S = 1.0
HEADING = "## Period detection"
STARTUP_HEADING = "## CLI start-up"  # benchmarks/startup.py's section


def timed(series: np.ndarray, repeats: int) -> tuple[float, int | None]:
    """(median seconds, the period found) of ``repeats`` calls."""
    seconds, found = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        found = detect_period(series)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), found


def write_section(results: Path, text: list[str]) -> None:
    """Put the section into RESULTS.md in place of an older one, else before the CLI start-up
    section (benchmarks/startup.py keeps what precedes its own section, and drops the rest)."""
    body = results.read_text() if results.exists() else ""
    if "\n" + HEADING in body:
        head, _, rest = body.partition("\n" + HEADING)
        tail = rest[rest.find("\n## ") :] if "\n## " in rest else ""
    else:
        head, found, rest = body.partition("\n" + STARTUP_HEADING)
        tail = "\n" + STARTUP_HEADING + rest if found else ""
    rest_text = "\n" + tail.lstrip("\n") if tail else ""
    results.write_text(head.rstrip("\n") + "\n" + "\n".join(text) + "\n" + rest_text)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--points", type=int, default=10**6)
    p.add_argument("--out", default=str(HERE), help="folder of the RESULTS.md to update")
    a = p.parse_args()
    rng = np.random.default_rng(0)
    t = np.arange(a.points)
    cases = {"white noise": rng.standard_normal(a.points),
             "sine, period 25, with noise": np.sin(2 * np.pi * t / 25)
             + 0.1 * rng.standard_normal(a.points)}
    rows = {name: timed(series, a.repeats) for name, series in cases.items()}
    text = ["", HEADING, "",
            f"`detect_period` on {a.points:,} points, median wall seconds of {a.repeats} calls "
            f"(budget {BUDGET_S:g} s).", "",
            "| series | period found | median s | within budget |", "|---|---|---|---|"]
    text += [f"| {name} | {found} | {s:.3f} | {'yes' if s < BUDGET_S else 'NO'} |"
             for name, (s, found) in rows.items()]
    print("\n".join(text))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    write_section(out / "RESULTS.md", text)
    return 0 if all(s < BUDGET_S for s, _ in rows.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
