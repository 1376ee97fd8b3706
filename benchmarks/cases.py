"""Benchmark cases: each runs once, in its own process, as rnnkit or as a plain PyTorch loop.

    python benchmarks/cases.py CASE IMPL [--smoke]  ->  one JSON line {"seconds", ...}

The references are the tight loop a careful PyTorch user writes: preloaded tensors, a fused
nn.RNN/LSTM/GRU, index slicing, Adam, the same hyper-parameters and the same work per epoch as
rnnkit (an evaluation pass before training, and a validation pass after every epoch, because
rnnkit's early stopping needs them; gradient clipping at 1.0). Timings exclude interpreter
start-up and imports; data preparation is excluded on both sides (rnnkit's figure is the
training loop's own clock, ``History.seconds``; its whole ``fit`` call is reported beside it).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit.train.threads import most_threads

# both sides of every comparison run on these; OMP_NUM_THREADS caps it (the test suite's smoke
# runs beside another test worker, where a second thread only spin-waits)
THREADS = min(2, most_threads())


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- data ----------------------------------------------------------------------------------
def sine_series(n: int) -> np.ndarray:
    return np.sin(0.1 * np.arange(n))


def seeded_data(n: int) -> np.ndarray:
    rng = np.random.default_rng(11)
    x = np.zeros((n, 10))
    x[:, :5] = rng.uniform(-1, 1, (n, 5))
    for i in range(5, 10):
        x[:, i] = x[:, i - 1] + 0.5 * x[:, 3]
    return x


def adder_data(n: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(7)
    seqs = [rng.integers(1, 11, size=int(rng.integers(2, 8))).astype(float) for _ in range(n)]
    return seqs, np.array([s.sum() for s in seqs])


def sunspots() -> np.ndarray:
    import pandas as pd

    from rnnkit.demos.sunspots import csv_path

    return pd.read_csv(csv_path())["sunspot_number"].to_numpy(np.float64)


# --- the reference loop ---------------------------------------------------------------------
class Net(nn.Module):
    def __init__(self, rnn: nn.Module, hidden: int, out: int) -> None:
        super().__init__()
        self.rnn, self.head = rnn, nn.Linear(hidden, out)


def reference_train(net: Net, loss_fn, x_tr, y_tr, x_va, y_va, epochs: int, batch: int,
                    lr: float, seed: int = 0, extra: tuple = ()) -> float:
    """The tight loop. loss_fn(net, x, y, *extra_batch) -> scalar loss."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(x_tr)

    def full_loss(x, y, ex):
        with torch.no_grad():
            return float(loss_fn(net, x, y, *ex)) if len(x) else math.nan

    start = time.perf_counter()
    full_loss(x_tr, y_tr, [e[0] for e in extra])
    full_loss(x_va, y_va, [e[1] for e in extra])
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, batch):
            idx = perm[s : s + batch]
            loss = loss_fn(net, x_tr[idx], y_tr[idx], *[e[0][idx] for e in extra])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
        net.eval()
        full_loss(x_va, y_va, [e[1] for e in extra])
    return time.perf_counter() - start


def scaled(a: np.ndarray, train_rows: int) -> np.ndarray:
    mu, sd = a[:train_rows].mean(), a[:train_rows].std()
    return ((a - mu) / (sd if sd > 0 else 1.0)).astype(np.float32)


def window_split(series: np.ndarray, w: int) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_val, y_val): windows of ``w`` -> the next value, 70/15 split."""
    n = len(series)
    train_end, val_end = round(n * 0.7), round(n * 0.85)
    z = torch.from_numpy(scaled(series, train_end))[:, None]
    win = z.unfold(0, w, 1).permute(0, 2, 1)  # (n - w + 1, w, 1)
    tr_o = np.arange(w - 1, train_end - 1)
    va_o = np.arange(train_end - 1, val_end - 1)
    return (win[tr_o - w + 1].contiguous(), z[tr_o + 1][:, None, :],
            win[va_o - w + 1].contiguous(), z[va_o + 1][:, None, :])


def last_step_loss(net: Net, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out, _ = net.rnn(x)
    return ((net.head(out[:, -1])[:, None, :] - y) ** 2).mean()


# --- cases ---------------------------------------------------------------------------------
COMMON = dict(quiet=True, early_stopping=0, lr_patience=0, linear_path=False, seed=0)


def case_sine(impl: str, smoke: bool) -> dict:
    """1024 windows x 50 steps, RNN tanh hidden 32, batch 64, 20 epochs (next-step)."""
    windows, w, epochs = (128, 50, 2) if smoke else (1024, 50, 20)
    # 85% train / 15% validation by time; training must hold `windows` windows of w + 1 rows
    n = math.ceil((windows + w) / 0.85) + 2
    series = sine_series(n)
    if impl == "rnnkit":
        import rnnkit

        t = time.perf_counter()
        run = rnnkit.fit(series, shape="next", cell="rnn", hidden_size=32, window=w,
                         transform="none", epochs=epochs, batch_size=64, lr=3e-3,
                         split=(0.85, 0.15, 0.0), **COMMON)
        total = time.perf_counter() - t
        return {"seconds": run.config["training"]["seconds"], "fit_seconds": total,
                "train_windows": len(run.pipeline.origins("train", n))}
    train_end = round(n * 0.85)
    z = torch.from_numpy(scaled(series, train_end))[:, None]
    chunks = z.unfold(0, w + 1, 1).permute(0, 2, 1)  # (M, w+1, 1)
    tr = chunks[: train_end - w]
    va = chunks[train_end - w : n - w]
    torch.manual_seed(0)
    net = Net(nn.RNN(1, 32, batch_first=True), 32, 1)

    def loss_fn(net, x, y):
        out, _ = net.rnn(x)
        return ((net.head(out) - y) ** 2).mean()

    secs = reference_train(net, loss_fn, tr[:, :-1].contiguous(), tr[:, 1:].contiguous(),
                           va[:, :-1].contiguous(), va[:, 1:].contiguous(), epochs, 64, 3e-3)
    return {"seconds": secs, "train_windows": len(tr)}


def case_seeded(impl: str, smoke: bool) -> dict:
    """1000 sequences x 10, LSTM hidden 32, batch 32, 100 epochs, closed-loop continuation."""
    n_tr, n_va, epochs = (200, 20, 3) if smoke else (1000, 100, 100)
    data = seeded_data(n_tr + n_va)
    if impl == "rnnkit":
        import rnnkit

        t = time.perf_counter()
        run = rnnkit.fit(data, shape="continuation", prompt_length=5, cell="lstm",
                         hidden_size=32, epochs=epochs, batch_size=32, lr=5e-3,
                         split=(n_tr / len(data), n_va / len(data), 0.0), **COMMON)
        return {"seconds": run.config["training"]["seconds"],
                "fit_seconds": time.perf_counter() - t}
    z = torch.from_numpy(scaled(data.ravel(), n_tr * 10).reshape(data.shape))[:, :, None]
    torch.manual_seed(0)
    net = Net(nn.LSTM(1, 32, batch_first=True), 32, 1)

    def loss_fn(net, x, y):
        out, state = net.rnn(x[:, :5])
        pred = net.head(out[:, -1])
        preds = [pred]
        for _ in range(4):
            out, state = net.rnn(pred[:, None, :], state)
            pred = net.head(out[:, -1])
            preds.append(pred)
        return ((torch.stack(preds, 1) - y) ** 2).mean()

    secs = reference_train(net, loss_fn, z[:n_tr], z[:n_tr, 5:], z[n_tr:], z[n_tr:, 5:],
                           epochs, 32, 5e-3)
    return {"seconds": secs}


def case_sunspots(impl: str, smoke: bool) -> dict:
    """Monthly sunspots one step ahead, windows of 48, LSTM hidden 64, batch 64, 30 epochs."""
    series = sunspots()
    epochs = 2 if smoke else 30
    if impl == "rnnkit":
        import rnnkit

        t = time.perf_counter()
        run = rnnkit.fit(series, cell="lstm", hidden_size=64, window=48, transform="none",
                         epochs=epochs, batch_size=64, lr=3e-3, **COMMON)
        return {"seconds": run.config["training"]["seconds"],
                "fit_seconds": time.perf_counter() - t}
    torch.manual_seed(0)
    net = Net(nn.LSTM(1, 64, batch_first=True), 64, 1)
    return {"seconds": reference_train(net, last_step_loss, *window_split(series, 48), epochs,
                                       64, 3e-3)}


def case_adder(impl: str, smoke: bool) -> dict:
    """1000 variable-length sequences, identity activation hidden 1, batch 32, 50 epochs.
    References: the same maths as a plain per-step loop, and fused nn.RNN(tanh) (speed target)."""
    n, epochs = (200, 3) if smoke else (1000, 50)
    seqs, sums = adder_data(n)
    n_tr = round(n * 0.85)
    if impl == "rnnkit":
        import rnnkit

        t = time.perf_counter()
        run = rnnkit.fit(seqs, target=sums, cell="rnn", activation="identity", hidden_size=1,
                         epochs=epochs, batch_size=32, lr=1e-2, scaler="none",
                         split=(0.85, 0.15, 0.0), **COMMON)
        return {"seconds": run.config["training"]["seconds"],
                "fit_seconds": time.perf_counter() - t}
    lengths = torch.tensor([len(s) for s in seqs])
    x = torch.zeros(n, int(lengths.max()), 1)
    for i, s in enumerate(seqs):
        x[i, : len(s), 0] = torch.from_numpy(s.astype(np.float32))
    y = torch.from_numpy(sums.astype(np.float32))[:, None]
    torch.manual_seed(0)
    if impl == "reference_fused_tanh":
        net = Net(nn.RNN(1, 1, batch_first=True), 1, 1)

        def loss_fn(net, xb, yb, lb):
            out, _ = net.rnn(xb)
            return ((net.head(out[torch.arange(len(xb)), lb - 1]) - yb) ** 2).mean()
    else:  # reference_loop: identity recurrence written per step
        cell = nn.RNNCell(1, 1)
        net = Net(cell, 1, 1)

        def loss_fn(net, xb, yb, lb):
            h = xb.new_zeros(len(xb), 1)
            outs = []
            for t in range(xb.shape[1]):
                h = nn.functional.linear(xb[:, t], net.rnn.weight_ih, net.rnn.bias_ih) + \
                    nn.functional.linear(h, net.rnn.weight_hh, net.rnn.bias_hh)
                outs.append(h)
            out = torch.stack(outs, 1)
            return ((net.head(out[torch.arange(len(xb)), lb - 1]) - yb) ** 2).mean()

    secs = reference_train(net, loss_fn, x[:n_tr], y[:n_tr], x[n_tr:], y[n_tr:], epochs, 32,
                           1e-2, extra=((lengths[:n_tr], lengths[n_tr:]),))
    return {"seconds": secs}


def _trained_seeded_run(smoke: bool):
    import rnnkit

    return rnnkit.fit(seeded_data(300), shape="continuation", prompt_length=5, cell="lstm",
                      hidden_size=32, epochs=1, batch_size=64, split=(0.9, 0.1, 0.0), **COMMON)


def case_generate(impl: str, smoke: bool) -> dict:
    """Batched generation: 10,000 prompts of 5 values, 50 steps each."""
    n, steps = (500, 10) if smoke else (10_000, 50)
    run = _trained_seeded_run(smoke)
    prompts = seeded_data(n)[:, :5]
    if impl == "rnnkit":
        run.generate(prompts[:10], steps)  # warm the allocator like the reference does
        t = time.perf_counter()
        run.generate(prompts, steps)
        return {"seconds": time.perf_counter() - t}
    sc = run.pipeline.x_scaler
    enc, head = run.model.encoder, run.model.head
    shift, scale = sc.shift[0], sc.scale[0]
    with torch.inference_mode():
        x = torch.from_numpy(((prompts - shift) / scale).astype(np.float32))[:, :, None]
        enc(x[:10])
        t = time.perf_counter()
        lin = run.model.linear  # the model's linear path acts at every step, fed back too
        out, state = enc(x)
        y = head(out[:, -1]) + lin(x[:, -1]) if lin is not None else head(out[:, -1])
        ys = [y]
        for _ in range(steps - 1):
            out, state = enc(y[:, None, :], state)
            y = head(out[:, -1]) + lin(y) if lin is not None else head(out[:, -1])
            ys.append(y)
        (torch.stack(ys, 1).numpy() * scale + shift)
        return {"seconds": time.perf_counter() - t}


def case_stream(impl: str, smoke: bool) -> dict:
    """Streaming: per-observation latency (microseconds) vs a raw nn.LSTMCell call."""
    steps = 200 if smoke else 20_000
    run = _trained_seeded_run(smoke)
    values = seeded_data(steps // 10 + 1).ravel()[:steps]
    if impl == "rnnkit":
        s = run.stream()
        for v in values[:100]:
            s.update(v)
        t = time.perf_counter()
        for v in values:
            s.update(v)
        secs = time.perf_counter() - t
        return {"seconds": secs, "us_per_step": 1e6 * secs / steps}
    cell = nn.LSTMCell(1, 32)
    xs = torch.from_numpy(values.astype(np.float32))[:, None, None]
    with torch.inference_mode():
        h = (torch.zeros(1, 32), torch.zeros(1, 32))
        for x in xs[:100]:
            h = cell(x, h)
        t = time.perf_counter()
        for x in xs:
            h = cell(x, h)
        secs = time.perf_counter() - t
    return {"seconds": secs, "us_per_step": 1e6 * secs / steps}


def case_forecast(impl: str, smoke: bool) -> dict:
    """forecast 1,000 steps past the end of sunspots (window 48, LSTM 64)."""
    import rnnkit

    steps = 50 if smoke else 1000
    series = sunspots()
    run = rnnkit.fit(series, cell="lstm", hidden_size=64, window=48, transform="none",
                     epochs=1, **COMMON)
    t = time.perf_counter()
    run.forecast(steps)
    return {"seconds": time.perf_counter() - t}


DAILY_EPOCHS = 21  # what the default fit of daily_series() runs: best epoch 0 + patience 20


def daily_series(n: int = 5000) -> Any:
    """A 5,000-row daily series: yearly season, weekend effect, AR(1) noise."""
    import pandas as pd

    rng = np.random.default_rng(0)
    e = np.zeros(n)
    for i in range(1, n):
        e[i] = 0.7 * e[i - 1] + rng.normal()
    t = np.arange(n)
    y = 20 + 8 * np.sin(2 * np.pi * t / 365.25) + 2 * (t % 7 >= 5) + e
    return pd.DataFrame({"date": pd.date_range("2000-01-01", periods=n, freq="D"), "y": y})


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def case_daily(impl: str, smoke: bool) -> dict:
    """The default fit of a 5,000-row daily series (issue 13), with its run folder, so the
    control, plots and report run too: its training loop against a plain loop doing the same
    epochs, its whole fit, and the same fit while another process keeps one core busy."""
    import tempfile
    from pathlib import Path

    frame = daily_series(600 if smoke else 5000)
    if impl.startswith("rnnkit"):
        import multiprocessing

        import rnnkit

        busy = None
        if impl == "rnnkit_busy":
            busy = multiprocessing.get_context("spawn").Process(target=_spin, args=(600.0,))
            busy.start()
            time.sleep(0.5)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                frame.to_csv(Path(tmp) / "daily.csv", index=False)
                t = time.perf_counter()
                run = rnnkit.fit(Path(tmp) / "daily.csv", target="y", quiet=True,
                                 out=Path(tmp) / "run", **({"epochs": 2} if smoke else {}))
                whole = time.perf_counter() - t
        finally:
            if busy is not None:
                busy.terminate()
                busy.join()
        return {"seconds": run.config["training"]["seconds"], "fit_seconds": whole,
                "epochs": len(run.history) - 1, "window": run.config["model"]["window"]}
    torch.manual_seed(0)
    net = Net(nn.LSTM(1, 32, batch_first=True), 32, 1)
    return {"seconds": reference_train(net, last_step_loss,
                                       *window_split(frame["y"].to_numpy(np.float64), 256),
                                       2 if smoke else DAILY_EPOCHS, 64, 3e-3)}


def ensemble_case(hidden: int):
    """One LSTM of ``hidden`` units against 8 such members packed side by side (issue 13),
    on the same work: monthly sunspots, windows of 48, batch 64, 20 epochs (no early
    stopping, no guard). Also reports each one's test RMSE."""

    def case(impl: str, smoke: bool) -> dict:
        import rnnkit

        k = {"single": 1, "members8": 8}[impl]
        t = time.perf_counter()
        run = rnnkit.fit(sunspots(), cell="lstm", hidden_size=hidden, ensemble=k, window=48,
                         transform="none", epochs=2 if smoke else 20, early_stopping=0,
                         guard=False, batch_size=64, lr=3e-3, quiet=True, seed=0)
        return {"seconds": run.config["training"]["seconds"],
                "fit_seconds": time.perf_counter() - t, "rmse": run.metrics["model"]["rmse"]}

    return case


CASES = {
    "sine": (case_sine, ["rnnkit", "reference"]),
    "seeded": (case_seeded, ["rnnkit", "reference"]),
    "sunspots": (case_sunspots, ["rnnkit", "reference"]),
    "adder": (case_adder, ["rnnkit", "reference_loop", "reference_fused_tanh"]),
    "generate": (case_generate, ["rnnkit", "reference"]),
    "stream": (case_stream, ["rnnkit", "reference"]),
    "forecast": (case_forecast, ["rnnkit"]),
    "daily5000": (case_daily, ["rnnkit", "reference", "rnnkit_busy"]),
    "ensemble4": (ensemble_case(4), ["members8", "single"]),
    "ensemble32": (ensemble_case(32), ["members8", "single"]),
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=sorted(CASES))
    p.add_argument("impl")
    p.add_argument("--smoke", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(THREADS)
    fn, impls = CASES[a.case]
    if a.impl not in impls:
        sys.exit(f"impl must be one of {impls}")
    out = fn(a.impl, a.smoke)
    out["peak_rss_mb"] = rss_mb()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
