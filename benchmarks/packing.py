"""``make bench-packing``: variable-length batches, masked (rnnkit's way) vs packed.

rnnkit runs a padded batch through the fused cell and reads each row's output at its last real
step (padding sits at the end, so a causal cell's output there never saw it). The alternative is
``pack_padded_sequence``, which skips the padded steps but sorts and re-lays the batch every
time. This times one training step (forward, loss on the last real output, backward) of an LSTM
both ways, on batches whose lengths are drawn uniformly from a range, for a few ranges: the
adder's 2-7 and wider ones, where packing saves more padded steps. Median of 7 rounds of 200
steps each, in one process, alternating the two. Writes benchmarks/PACKING.md.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

HERE = Path(__file__).resolve().parent
CASES = [(2, 7), (5, 50), (10, 200)]
BATCH, HIDDEN, STEPS, ROUNDS = 64, 32, 200, 7


def batches(lo: int, hi: int, gen: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor,
                                                                 torch.Tensor]]:
    out = []
    for _ in range(STEPS):
        lengths = torch.randint(lo, hi + 1, (BATCH,), generator=gen)
        x = torch.randn(BATCH, int(lengths.max()), 1, generator=gen)
        x[torch.arange(x.shape[1])[None, :] >= lengths[:, None]] = 0.0
        out.append((x, lengths, torch.randn(BATCH, 1, generator=gen)))
    return out


def masked(lstm: nn.LSTM, head: nn.Linear, x: torch.Tensor, lengths: torch.Tensor,
           y: torch.Tensor) -> torch.Tensor:
    out, _ = lstm(x)
    last = out[torch.arange(len(x)), lengths - 1]
    return ((head(last) - y) ** 2).mean()


def packed(lstm: nn.LSTM, head: nn.Linear, x: torch.Tensor, lengths: torch.Tensor,
           y: torch.Tensor) -> torch.Tensor:
    _, (h, _) = lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    return ((head(h[-1]) - y) ** 2).mean()


def timed(fn: Callable, lstm: nn.LSTM, head: nn.Linear, data: list) -> float:
    opt = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)
    start = time.perf_counter()
    for x, lengths, y in data:
        loss = fn(lstm, head, x, lengths, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rows = []
    for lo, hi in CASES:
        data = batches(lo, hi, torch.Generator().manual_seed(lo))
        lstm, head = nn.LSTM(1, HIDDEN, batch_first=True), nn.Linear(HIDDEN, 1)
        # the same weights give the same loss both ways: the comparison is of equal work
        x, lengths, y = data[0]
        assert torch.allclose(masked(lstm, head, x, lengths, y), packed(lstm, head, x, lengths, y),
                              atol=1e-6)
        timed(masked, lstm, head, data[:20])
        timed(packed, lstm, head, data[:20])  # warm-up
        m, p = [], []
        for _ in range(ROUNDS):
            m.append(timed(masked, lstm, head, data))
            p.append(timed(packed, lstm, head, data))
        mm, pm = statistics.median(m), statistics.median(p)
        rows.append({"lengths": f"{lo}-{hi}", "masked_ms_per_step": round(1e3 * mm / STEPS, 3),
                     "packed_ms_per_step": round(1e3 * pm / STEPS, 3),
                     "packed_over_masked": round(pm / mm, 3)})
        print(rows[-1], flush=True)
    (HERE / "packing.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["# Masked vs packed variable-length batches", "",
             f"`make bench-packing`: one LSTM({HIDDEN}) training step on a batch of {BATCH} "
             "sequences with lengths drawn uniformly from the range; loss on each sequence's "
             f"last real output. Median of {ROUNDS} rounds of {STEPS} steps, CPU, 2 threads.", "",
             "| lengths | masked ms/step | packed ms/step | packed / masked |", "|---|---|---|---|"]
    lines += [f"| {r['lengths']} | {r['masked_ms_per_step']} | {r['packed_ms_per_step']} | "
              f"{r['packed_over_masked']} |" for r in rows]
    (HERE / "PACKING.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
