"""ONNX export of runs with covariates (issue 15; rnnkit/export_covariates.py): a panel's known
covariates and static columns, known covariates and past features in the stateful forms
(window series and panel series, per-step series), and past features up to the horizon become
inputs of the graph, and onnxruntime gives what rnnkit gives (``Run.forecast``, ``Run.stream``,
the model over the run's own working rows) within 1e-5."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch

import rnnkit
from rnnkit.data import calendar
from rnnkit.errors import ConfigError
from rnnkit.export import export_onnx

RTOL = 1e-5


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def meta_of(path: Path) -> dict:
    text = ("rnnkit_version", "rnnkit_form")
    return {p.key: p.value if p.key in text else json.loads(p.value)
            for p in onnx.load(path).metadata_props}


def outputs(sess: ort.InferenceSession, feed: dict) -> dict[str, np.ndarray]:
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed), strict=True))


def shops(series: int = 3, n: int = 150, ahead: int = 12, seed: int = 0, region: bool = False
          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily sales of ``series`` shops (levels 10..1000, +30% on promotion days, a weekend
    lift) and the plan of the ``ahead`` days after; with ``region``, static columns ``region``
    (text) and ``size`` (a number)."""
    rng = np.random.default_rng(seed)
    data, plan = [], []
    ds = pd.date_range("2021-01-01", periods=n + ahead, freq="D")
    for i in range(series):
        promo = (rng.random(n + ahead) < 0.2).astype(float)
        level = 10 ** rng.uniform(1, 3)
        y = level * (1 + 0.3 * promo + 0.2 * (ds.day_of_week >= 5)
                     + 0.05 * rng.normal(size=n + ahead))
        frame = pd.DataFrame({"unique_id": f"shop{i}", "ds": ds[:n], "y": y[:n],
                              "promo": promo[:n]})
        if region:
            frame["region"], frame["size"] = ("north", "south", "east")[i % 3], 100.0 + 7 * i
        data.append(frame)
        plan.append(pd.DataFrame({"unique_id": f"shop{i}", "ds": ds[n:], "promo": promo[n:]}))
    return pd.concat(data, ignore_index=True), pd.concat(plan, ignore_index=True)


def known_rows(data: pd.DataFrame, plan: pd.DataFrame, sid: str, rows: int, ahead: int,
               known: dict) -> np.ndarray:
    """(rows + ahead, K) a series' known covariates at its last ``rows`` rows and the
    ``ahead`` after them, built as a deployer builds them: the future features from the data
    and the plan, the calendar columns from the dates."""
    past, coming = data[data.unique_id == sid].tail(rows), plan[plan.unique_id == sid]
    both = pd.concat([past, coming.head(ahead)], ignore_index=True)
    dates = pd.DatetimeIndex(both["ds"])
    cols = [both[c].to_numpy(dtype=np.float64) for c in known["future"]]
    cal = calendar.encode(dates, known["calendar"], known["holidays"])
    return np.column_stack([*cols, cal]) if known["calendar"] or known["holidays"] else (
        np.column_stack(cols))


def panel_feed(meta: dict, data: pd.DataFrame, plan: pd.DataFrame, ids: list[str],
               rows: int) -> dict[str, np.ndarray]:
    """A batch of the series ``ids``: their history, scaling, known covariates and statics."""
    per = meta["series"]
    feed = {"history": np.stack([data.loc[data.unique_id == s, meta["columns"]].to_numpy(
        dtype=np.float64)[-rows:] for s in ids])}
    for key in ("shift", "scale", "sigma"):
        if key in meta["inputs"]:  # sigma: only where the run has intervals
            feed[key] = np.array([per[s][key] for s in ids])
    if "known" in meta["inputs"]:
        feed["known"] = np.stack([known_rows(data, plan, s, rows, meta["known"]["rows_ahead"],
                                             meta["known"]) for s in ids])
    if "static" in meta["inputs"]:
        feed["static"] = np.array([per[s]["static"] for s in ids])
    return feed


@pytest.mark.parametrize(("transform", "horizon"), [("none", 1), ("diff", 2)])
def test_a_panel_with_future_features_and_a_calendar_exports_them_as_inputs(
        tmp_path: Path, transform: str, horizon: int) -> None:
    data, plan = shops()
    run = rnnkit.fit(data, future_features=["promo"], calendar="weekday", holidays="US",
                     transform=transform, horizon=horizon, window=5, hidden_size=8, epochs=2,
                     quiet=True, seed=0, guard=False)
    steps = 5
    path = export_onnx(run, tmp_path / "p.onnx", steps=steps)
    meta = meta_of(path)
    assert meta["inputs"] == ["history", "shift", "scale", "sigma", "known"]
    assert meta["known"]["columns"][0] == "promo" and meta["known"]["holidays"] == "US"
    assert meta["known"]["rows_ahead"] == -(-steps // horizon) * horizon
    need = run.pipeline.window + int(run.pipeline.diff)
    ids = ["shop0", "shop2"]  # two series in one batch, each by its own scaling
    got = outputs(session(path), panel_feed(meta, data, plan, ids, need + 3))
    ref = run.forecast(steps, future=plan)
    for b, sid in enumerate(ids):
        mine = ref[ref.unique_id == sid]
        for out, col in (("forecast", "y"), ("lo80", "y_lo80"), ("hi95", "y_hi95")):
            np.testing.assert_allclose(got[out][b, :, 0], mine[col].to_numpy(), rtol=RTOL)
    # the covariates are in the forecast: a promotion moved to another day moves it
    feed = panel_feed(meta, data, plan, ids, need)
    feed["known"][:, -meta["known"]["rows_ahead"]:, 0] = 1 - feed["known"][
        :, -meta["known"]["rows_ahead"]:, 0]
    assert not np.allclose(session(path).run(["forecast"], feed)[0], got["forecast"])


def test_a_panel_with_a_numeric_and_a_categorical_static_exports_a_static_input(
        tmp_path: Path) -> None:
    data, plan = shops(series=4, region=True)
    run = rnnkit.fit(data, static=["region", "size"], future_features=["promo"],
                     calendar="none", window=5, hidden_size=8, epochs=2, quiet=True, seed=0,
                     guard=False)
    path = export_onnx(run, tmp_path / "s.onnx", steps=4)
    meta = meta_of(path)
    assert meta["inputs"] == ["history", "shift", "scale", "sigma", "known", "static"]
    table = meta["static"]
    assert table["columns"] == ["size", "region"]
    assert table["categories"] == [["east", "north", "south"]]
    # what a deployer feeds: the raw size, the region's position in the table
    firsts = data.groupby("unique_id").first()
    for sid, row in firsts.iterrows():
        code = table["categories"][0].index(row["region"])
        assert meta["series"][sid]["static"] == [row["size"], code]  # read back exactly
    ids = ["shop1", "shop3", "shop0"]
    feed = panel_feed(meta, data, plan, ids, run.pipeline.window + int(run.pipeline.diff))
    feed["static"] = np.array([[firsts.loc[s, "size"], table["categories"][0].index(
        firsts.loc[s, "region"])] for s in ids])
    got = session(path).run(["forecast"], feed)[0]
    ref = run.forecast(4, future=plan)
    for b, sid in enumerate(ids):
        np.testing.assert_allclose(got[b, :, 0], ref.loc[ref.unique_id == sid, "y"],
                                   rtol=RTOL)
    # the statics are in the forecast: another region (the embedding) moves it
    feed["static"][:, 1] = (feed["static"][:, 1] + 1) % 3
    moved = session(path).run(["forecast"], feed)[0]
    assert np.isfinite(moved).all() and not np.allclose(moved, got)
    # a graph cannot refuse: a code outside the table forecasts NaN for that row only
    feed["static"][0, 1], feed["static"][1, 1] = 3, 0.5
    out = session(path).run(["forecast"], feed)[0]
    assert np.isnan(out[:2]).all() and np.isfinite(out[2]).all()


@pytest.mark.parametrize(("cell", "transform"), [("lstm", "none"), ("gru", "diff")])
def test_the_stateful_step_of_a_per_step_run_takes_the_next_row_s_known_covariates(
        tmp_path: Path, cell: str, transform: str) -> None:
    data, _ = shops(series=1, n=200)
    df = data.drop(columns="unique_id")
    run = rnnkit.fit(df, target="y", future_features=["promo"], calendar="weekday",
                     shape="next", cell=cell, transform=transform, window=8, hidden_size=8,
                     num_layers=2, epochs=2, quiet=True, seed=0)
    path = export_onnx(run, tmp_path / "step.onnx", stateful=True)
    meta = meta_of(path)
    diff = run.pipeline.diff
    assert meta["inputs"] == ["x", "known", "h", *(["c"] if cell == "lstm" else []),
                              *(["last"] if diff else []), "seen"]
    known = np.column_stack([df["promo"].to_numpy(), calendar.encode(
        pd.DatetimeIndex(df["ds"]), meta["known"]["calendar"], None)])  # (T, K)
    y = df["y"].to_numpy()
    sess, feed = session(path), {"h": np.zeros((2, 1, 8), np.float32),
                                 "seen": np.zeros(1, np.int64)}
    feed.update({"c": feed["h"]} if cell == "lstm" else {})
    feed.update({"last": np.zeros((1, 1))} if diff else {})
    got = []
    for t in range(len(y) - 1):  # x: row t; known: row t + 1, the row y forecasts
        out = outputs(sess, {"x": y[None, t, None], "known": known[None, t + 1], **feed})
        feed = {n: out[f"{n}_out"] for n in feed}
        got.append(out["y"][0, 0])
    # rnnkit's own one-step predictions: the model over the run's working rows from the start
    with torch.no_grad():
        raw = run.model(run.data.buffer[None])[0][0, :, 0].numpy().astype(np.float64)
    pred = run.pipeline.scaler.inverse(raw[:, None], slice(0, 1))[:, 0]
    if diff:  # working row i is the change into row i + 1
        got, pred = np.array(got[1:]), y[1:-1] + pred[:-1]
    else:
        got, pred = np.array(got), pred[:-1]
    np.testing.assert_allclose(got, pred, rtol=RTOL)
    assert int(feed["seen"][0]) == len(y) - 1


@pytest.mark.parametrize("kind", ["series", "panel"])
def test_past_features_export_up_to_the_horizon(tmp_path: Path, kind: str) -> None:
    data, plan = shops(series=1 if kind == "series" else 3, n=160)
    rng = np.random.default_rng(5)
    data["price"] = 2 + rng.random(len(data))
    frame = data.drop(columns="unique_id") if kind == "series" else data
    run = rnnkit.fit(frame, target="y" if kind == "series" else None, features=["price"],
                     future_features=["promo"], calendar="weekday", horizon=3, window=6,
                     hidden_size=8, epochs=2, quiet=True, seed=0, guard=False)
    path = export_onnx(run, tmp_path / "f.onnx", steps=3)
    meta = meta_of(path)
    assert meta["columns"] == ["y", "price"] and meta["features"] == {
        "columns": ["price"], "max_steps": 3}
    need = run.pipeline.window + int(run.pipeline.diff)
    if kind == "series":
        sid = data.unique_id.iloc[0]
        feed = {"history": frame[["y", "price"]].to_numpy()[None, -need:],
                "known": known_rows(data, plan, sid, need, 3, meta["known"])[None]}
        got = outputs(session(path), feed)
        fc = run.forecast(3, future=plan.drop(columns="unique_id"))
        # the direct head's intervals, calibrated per step of the horizon
        np.testing.assert_allclose(got["hi80"][0, :, 0], fc["y_hi80"], rtol=RTOL)
        got, ref = got["forecast"], fc["y"].to_numpy()[None]
    else:
        ids = ["shop0", "shop1", "shop2"]
        got = session(path).run(["forecast"], panel_feed(meta, data, plan, ids, need))[0]
        fc = run.forecast(3, future=plan)
        ref = np.stack([fc.loc[fc.unique_id == s, "y"].to_numpy() for s in ids])
    np.testing.assert_allclose(got[..., 0], ref, rtol=RTOL)
    with pytest.raises(ConfigError, match=r"features \['price'\] are known only up to the last "
                                          r"row, so its forecast goes at most 3 step"):
        export_onnx(run, tmp_path / "g.onnx", steps=4)
    assert not (tmp_path / "g.onnx").exists()


def plan_known(plan: pd.DataFrame, sid: str, known: dict) -> np.ndarray:
    """(rows, K) a series' known covariates at the plan's rows (the rows a stream observes)."""
    rows = known_rows(plan.assign(y=0.0), plan.iloc[:0], sid, len(plan), 0, known)
    return rows.astype(np.float64)  # the graph reads float64


def step_window_stream(sess: ort.InferenceSession, stream: Any, feed: dict, y: np.ndarray,
                       known: np.ndarray, lead: int, future: bool) -> list[float]:
    """Step the stateful graph and ``stream`` through ``y`` side by side, the graph given
    x's row's known covariates and the ``lead`` rows' after it, the stream the coming values
    of promo; the relative differences where the stream forecasts (NaN where both do)."""
    diffs = []
    for t in range(len(y)):
        given = {"promo": known[t if t == 0 else t + 1 : t + 1 + lead, 0]} if future else None
        ref = stream.update(y[t], future=given)
        out = outputs(sess, {"x": y[None, t, None], "known": known[None, t : t + 1 + lead],
                             **feed})
        feed.update(buffer=out["buffer_out"], seen=out["seen_out"])
        assert np.isnan(ref[0]) == np.isnan(out["y"][0, 0]), t
        if not np.isnan(ref[0]):
            diffs.append(abs(out["y"][0, 0] - ref[0]) / abs(ref[0]))
    return diffs


@pytest.mark.parametrize(("transform", "future"), [("none", False), ("diff", False),
                                                   ("none", True)])
def test_a_window_series_with_known_covariates_streams_in_its_stateful_form(
        tmp_path: Path, transform: str, future: bool) -> None:
    data, plan = shops(series=1, n=120, ahead=40)
    run = rnnkit.fit(data.drop(columns="unique_id" if future else ["unique_id", "promo"]),
                     target="y", future_features=["promo"] if future else None,
                     calendar="weekday", transform=transform, window=5, horizon=2,
                     hidden_size=8, epochs=2, quiet=True, seed=0, guard=False)
    path = export_onnx(run, tmp_path / "w.onnx", stateful=True)
    meta = meta_of(path)
    k = 8 if future else 7  # promo, then the seven weekday columns
    assert meta["inputs"] == ["x", "known", "buffer", "seen"]
    assert meta["known"]["step_rows"] == [0, 1, 2] and len(meta["known"]["columns"]) == k
    assert meta["buffer_columns"] == ["y", *meta["known"]["columns"]]
    need = run.pipeline.window + int(run.pipeline.diff)
    feed = {"buffer": np.zeros((1, need, 1 + k)), "seen": np.zeros(1, np.int64)}
    known = plan_known(plan if future else plan.drop(columns="promo"), "shop0", meta["known"])
    y = 100 + 10 * np.sin(np.arange(30))  # the stream's rows: the plan's days
    diffs = step_window_stream(session(path), run.stream(), feed, y, known, 2, future)
    assert len(diffs) == 30 - need + 1 and max(diffs) < RTOL


def test_a_panel_series_with_a_future_feature_streams_by_its_own_scaling(
        tmp_path: Path) -> None:
    data, plan = shops(series=3, n=120, ahead=40)
    run = rnnkit.fit(data, future_features=["promo"], calendar="weekday", window=5,
                     horizon=2, hidden_size=8, epochs=2, quiet=True, seed=0, guard=False)
    path = export_onnx(run, tmp_path / "p.onnx", stateful=True)
    meta = meta_of(path)
    assert meta["inputs"] == ["x", "known", "buffer", "seen", "shift", "scale"]
    need, own = run.pipeline.window, meta["series"]["shop1"]
    # the stream starts primed on the series' last rows: the graph's buffer holds them too
    primer = np.column_stack([data.loc[data.unique_id == "shop1", "y"].to_numpy()[-need:],
                              known_rows(data, plan, "shop1", need, 0, meta["known"])])
    feed = {"buffer": primer[None], "seen": np.array([need]),
            "shift": np.array([own["shift"]]), "scale": np.array([own["scale"]])}
    y = 200 + 20 * np.cos(np.arange(25))
    diffs = step_window_stream(session(path), run.stream(series="shop1"), feed, y,
                               plan_known(plan, "shop1", meta["known"]), 2, True)
    assert len(diffs) == 25 and max(diffs) < RTOL


@pytest.mark.parametrize(("shape", "transform"), [("next", "diff"), ("window", "none")])
def test_past_features_stream_with_each_observation_in_the_stateful_form(
        tmp_path: Path, shape: str, transform: str) -> None:
    data, _ = shops(series=1, n=120)
    df = data.drop(columns=["unique_id", "promo"]).assign(
        price=2 + np.random.default_rng(3).random(120))
    run = rnnkit.fit(df, target="y", features=["price"], calendar="none", shape=shape,
                     cell="gru", transform=transform, window=6,
                     horizon=1 + (shape == "window"), hidden_size=8, epochs=2, quiet=True,
                     seed=0, guard=False)
    path = export_onnx(run, tmp_path / "f.onnx", stateful=True)
    assert meta_of(path)["columns"] == ["y", "price"]
    sess, stream, need = session(path), run.stream(), 6 + int(transform == "diff")
    feed = ({"h": np.zeros((1, 1, 8), np.float32), "last": np.zeros((1, 1))}
            if shape == "next" else {"buffer": np.zeros((1, need, 2))})
    feed["seen"] = np.zeros(1, np.int64)
    rows, diffs = df[["y", "price"]].to_numpy()[-30:], []
    for row in rows:  # x: the row's target and its feature, as the stream observes them
        ref, out = stream.update(row), outputs(sess, {"x": row[None], **feed})
        feed = {n: out[f"{n}_out"] for n in feed}
        assert np.isnan(ref[0]) == np.isnan(out["y"][0, 0])
        diffs += [] if np.isnan(ref[0]) else [abs(out["y"][0, 0] - ref[0]) / abs(ref[0])]
    assert len(diffs) == (29 if shape == "next" else 30 - need + 1) and max(diffs) < RTOL


def test_the_cli_exports_a_panel_with_covariates_and_names_its_inputs(tmp_path: Path,
                                                                      cli) -> None:
    data, _ = shops(series=2, n=100, ahead=6, region=True)
    run = rnnkit.fit(data, future_features=["promo"], static=["region", "size"],
                     calendar="weekday", window=5, epochs=1, quiet=True, seed=0)
    run.save(tmp_path / "run", plots=False)
    code, out, err = cli("export", "run", "--steps", "6", "--out", "p.onnx", cwd=tmp_path)
    assert code == 0, err
    assert "inputs: history, shift, scale, sigma, known, static" in out, out
    assert [i.name for i in session(tmp_path / "p.onnx").get_inputs()] == [
        "history", "shift", "scale", "sigma", "known", "static"]


def primed_feed(meta: dict, data: pd.DataFrame, plan: pd.DataFrame, ids: list[str],
                need: int) -> dict[str, np.ndarray]:
    """The stateful inputs of the series ``ids`` as their streams start: each buffer primed
    on the series' last ``need`` rows (raw, with their known covariates), its scaling and
    its ``static`` row from the ``series`` metadata."""
    per, buffers = meta["series"], []
    for sid in ids:
        rows = [data.loc[data.unique_id == sid, "y"].to_numpy()[-need:]]
        if "known" in meta["inputs"]:
            rows.append(known_rows(data, plan, sid, need, 0, meta["known"]))
        buffers.append(np.column_stack(rows))
    return {"buffer": np.stack(buffers), "seen": np.full(len(ids), need),
            **{k: np.array([per[s][k] for s in ids]) for k in ("shift", "scale", "static")}}


@pytest.mark.parametrize(("transform", "future"), [("diff", False), ("none", True)])
def test_panel_series_with_statics_stream_in_one_batch_in_the_stateful_form(
        tmp_path: Path, transform: str, future: bool) -> None:
    data, plan = shops(series=3, n=100, ahead=40, region=True)
    run = rnnkit.fit(data if future else data.drop(columns="promo"), static=["region", "size"],
                     future_features=["promo"] if future else None, calendar="none",
                     transform=transform, window=5, horizon=2, hidden_size=8, epochs=2,
                     quiet=True, seed=0, guard=False)
    path = export_onnx(run, tmp_path / "s.onnx", stateful=True)
    meta = meta_of(path)
    assert meta["inputs"] == ["x", *(["known"] if future else []), "buffer", "seen", "shift",
                              "scale", "static"]
    assert meta["static"]["columns"] == ["size", "region"]
    ids, need = ["shop2", "shop0"], run.pipeline.window + int(run.pipeline.diff)
    feed = primed_feed(meta, data, plan, ids, need)
    known = np.stack([plan_known(plan, s, meta["known"]) for s in ids]) if future else None
    streams = [run.stream(series=s) for s in ids]
    y = 150 + 15 * np.sin(np.arange(25))[:, None] * np.array([1.0, 2.0])  # (rows, series)
    sess, diffs = session(path), []
    for t in range(len(y)):  # both series side by side in one batch
        given = [{"promo": known[b, t if t == 0 else t + 1 : t + 3, 0]} if future else None
                 for b in range(2)]
        ref = [s.update(y[t, b], future=given[b])[0] for b, s in enumerate(streams)]
        step = {"x": y[t, :, None], **feed,
                **({"known": known[:, t : t + 3]} if future else {})}
        out = outputs(sess, step)
        feed.update(buffer=out["buffer_out"], seen=out["seen_out"])
        diffs += list(np.abs(out["y"][:, 0] - ref) / np.abs(ref))
    assert len(diffs) == 50 and max(diffs) < RTOL, max(diffs)
    # a graph cannot refuse: a code outside the table forecasts NaN for that row only
    step["static"] = feed["static"].copy()
    step["static"][0, 1] = len(meta["static"]["categories"][0])
    bad = outputs(sess, step)
    assert np.isnan(bad["y"][0]).all() and bad["y"][1] == pytest.approx(out["y"][1])
