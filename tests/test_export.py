"""ONNX export (rnnkit/export.py): onnxruntime runs the exported loop and gives what
``Run.forecast`` and ``Run.stream`` give, for every cell, with and without differencing, for
horizons 1 and 12, and for a panel; bad requests are refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from helpers_panel import make_panel

import rnnkit
from rnnkit.errors import ConfigError
from rnnkit.export import export_onnx

RTOL = 1e-5
STEPS = 12
CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("rnn", "identity"), ("lstm", "tanh"),
         ("gru", "tanh")]


def series(n: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + np.cumsum(rng.normal(size=n)) + 3 * np.sin(t * 2 * np.pi / 12)


def fitted(cell: str, activation: str, transform: str, horizon: int):
    # guard off: the recurrent path must be in the forecast, not folded away for a simple model
    return rnnkit.fit(pd.DataFrame({"y": series()}), target="y", quiet=True, epochs=2,
                      cell=cell, activation=activation,
                      transform=transform, horizon=horizon, hidden_size=8, window=12,
                      guard=False)


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("horizon", [1, 12])
@pytest.mark.parametrize("transform", ["none", "diff"])
@pytest.mark.parametrize(("cell", "activation"), CELLS, ids=[f"{c}-{a}" for c, a in CELLS])
def test_onnx_forecast_equals_run_forecast(tmp_path: Path, cell: str, activation: str,
                                           transform: str, horizon: int) -> None:
    run = fitted(cell, activation, transform, horizon)
    path = export_onnx(run, tmp_path / "m.onnx", steps=STEPS)
    need = run.pipeline.window + int(run.pipeline.diff)
    y = series()
    got = dict(zip([o.name for o in session(path).get_outputs()],
                   session(path).run(None, {"history": y[None, -need:, None]}), strict=True))
    ref = run.forecast(STEPS)
    assert got["forecast"].shape == (1, STEPS, 1)
    np.testing.assert_allclose(got["forecast"][0, :, 0], ref["y"].to_numpy(), rtol=RTOL)
    for level in (80, 95):
        for side in ("lo", "hi"):
            np.testing.assert_allclose(got[f"{side}{level}"][0, :, 0],
                                       ref[f"y_{side}{level}"].to_numpy(), rtol=RTOL)
    # the network is in the forecast: a history that differs only in its oldest rows moves it
    if run.pipeline.window > 1:
        moved = y[None, -need:, None].copy()
        moved[0, : need // 2] += 5.0
        assert not np.allclose(session(path).run(["forecast"], {"history": moved})[0],
                               got["forecast"])


def test_longer_histories_and_batches_use_each_row_s_last_window(tmp_path: Path) -> None:
    run = fitted("lstm", "tanh", "diff", 1)
    path = export_onnx(run, tmp_path / "m.onnx", steps=5)
    need = run.pipeline.window + int(run.pipeline.diff)
    y = series()
    batch = np.stack([y[-need - 40:], y[-need - 80 : -40]])[..., None]  # (2, need + 40, 1)
    got = session(path).run(["forecast"], {"history": batch})[0]
    for row in range(2):
        ref = run.forecast(5, data=pd.DataFrame({"y": batch[row, :, 0]}))
        np.testing.assert_allclose(got[row, :, 0], ref["y"].to_numpy(), rtol=RTOL)


def test_metadata_records_the_version_and_the_config(tmp_path: Path) -> None:
    run = fitted("gru", "tanh", "none", 1)
    meta = {p.key: p.value for p in onnx.load(export_onnx(run, tmp_path / "m.onnx",
                                                          steps=3)).metadata_props}
    assert meta["rnnkit_version"] == rnnkit.__version__ and meta["rnnkit_form"] == "forecast"
    assert json.loads(meta["config"])["model"] == json.loads(json.dumps(run.config["model"]))
    assert json.loads(meta["outputs"]) == ["forecast", "lo80", "hi80", "lo95", "hi95"]
    assert meta["window"] == "12" and meta["steps"] == "3"


@pytest.mark.parametrize("transform", ["none", "diff"])
def test_stateful_export_stepped_through_a_series_equals_stream(tmp_path: Path,
                                                               transform: str) -> None:
    run = fitted("lstm", "tanh", transform, 1)
    path = export_onnx(run, tmp_path / "s.onnx", stateful=True)
    sess = session(path)
    need = run.pipeline.window + int(run.pipeline.diff)
    buffer, seen = np.zeros((1, need, 1)), np.zeros(1, dtype=np.int64)
    stream = run.stream()
    for value in series()[:60]:
        y, buffer, seen = sess.run(None, {"x": np.array([[value]]), "buffer": buffer,
                                          "seen": seen})
        expected = stream.update(value)
        if np.isnan(expected).all():
            assert np.isnan(y).all()
        else:
            np.testing.assert_allclose(y[0], expected, rtol=RTOL)
    assert int(seen[0]) == 60


def test_panel_exports_one_global_model_with_per_series_scaling(tmp_path: Path) -> None:
    panel = make_panel(3, 60)
    run = rnnkit.fit(panel, epochs=3, quiet=True, hidden_size=8, window=12, guard=False)
    path = export_onnx(run, tmp_path / "p.onnx", steps=6)
    proto = onnx.load(path)
    meta = {p.key: p.value for p in proto.metadata_props}
    scales = json.loads(meta["series"])
    ref = run.forecast(6)
    need = run.pipeline.window + int(run.pipeline.diff)
    sess = session(path)
    for sid in sorted(scales):
        s = scales[sid]
        hist = panel.loc[panel.unique_id == sid, "y"].to_numpy()[-need:]
        got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {
            "history": hist[None, :, None], "shift": np.array([s["shift"]]),
            "scale": np.array([s["scale"]]), "sigma": np.array([s["sigma"]])}), strict=True))
        mine = ref[ref["unique_id"] == sid]
        np.testing.assert_allclose(got["forecast"][0, :, 0], mine["y"].to_numpy(), rtol=RTOL)
        np.testing.assert_allclose(got["hi80"][0, :, 0], mine["y_hi80"].to_numpy(), rtol=RTOL)
        np.testing.assert_allclose(got["lo95"][0, :, 0], mine["y_lo95"].to_numpy(), rtol=RTOL)


def test_what_cannot_be_exported_is_refused_in_one_line(tmp_path: Path) -> None:
    run = fitted("gru", "tanh", "none", 1)
    for steps in (0, -3, 10_001, 2.5):
        with pytest.raises(ConfigError, match="steps="):
            export_onnx(run, tmp_path / "m.onnx", steps=steps)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"y": series(), "x": rng.normal(size=300)})
    with_features = rnnkit.fit(frame, target="y", features=["x"], quiet=True, epochs=1)
    with pytest.raises(ConfigError, match=r"features \['x'\]"):
        export_onnx(with_features, tmp_path / "f.onnx")
    assert not (tmp_path / "f.onnx").exists() and not (tmp_path / "m.onnx").exists()


def test_cli_export_writes_the_graph_and_refuses_bad_arguments(tmp_path: Path, cli) -> None:
    pd.DataFrame({"y": series()}).to_csv(tmp_path / "d.csv", index=False)
    code, _, err = cli("fit", "d.csv", "--target", "y", "--epochs", "2", "--quiet", "--out",
                       "run", cwd=tmp_path)
    assert code == 0, err
    code, out, err = cli("export", "run", "--format", "onnx", "--steps", "6", "--out",
                         "m.onnx", cwd=tmp_path)
    assert code == 0, err
    assert out.startswith("wrote m.onnx (") and "6-step forecast" in out
    got = session(tmp_path / "m.onnx").run(["forecast"], {"history": series()[None, -40:, None]})
    assert got[0].shape == (1, 6, 1)
    for args, needle in ((["--format", "tflite"], "--format 'tflite' is not supported"),
                         (["--steps", "0"], "steps=0 must be")):
        code, _, err = cli("export", "run", "--out", "x.onnx", *args, cwd=tmp_path)
        assert code == 2 and err.count("\n") == 1 and needle in err, err
        assert "Traceback" not in err
    assert not (tmp_path / "x.onnx").exists()


def test_per_step_models_export_their_last_step_forecast(tmp_path: Path) -> None:
    # shape next: the model predicts at every step of its window; the row after the window is
    # its last output, fed back like any forecast
    run = rnnkit.fit(pd.DataFrame({"y": series()}), target="y", quiet=True, epochs=2,
                     shape="next", hidden_size=8, window=12, transform="none")
    path = export_onnx(run, tmp_path / "n.onnx", steps=7)
    got = session(path).run(["forecast"], {"history": series()[None, -12:, None]})[0]
    np.testing.assert_allclose(got[0, :, 0], run.forecast(7)["y"].to_numpy(), rtol=RTOL)


@pytest.mark.parametrize("transform", ["none", "diff"])
@pytest.mark.parametrize(("cell", "activation"), CELLS, ids=[f"{c}-{a}" for c, a in CELLS])
def test_stateful_export_of_a_per_step_model_carries_its_hidden_state_like_stream(
        tmp_path: Path, cell: str, activation: str, transform: str) -> None:
    run = rnnkit.fit(pd.DataFrame({"y": series()}), target="y", quiet=True, epochs=2,
                     shape="next", cell=cell, activation=activation, hidden_size=8,
                     window=12, transform=transform, num_layers=2)
    path = export_onnx(run, tmp_path / "step.onnx", stateful=True)
    sess = session(path)
    names = [i.name for i in sess.get_inputs()]
    diff = run.pipeline.diff
    assert names == ["x", "h", *(["c"] if cell == "lstm" else []), *(["last"] if diff else []),
                     "seen"]
    # two series side by side in one batch, each state its own
    values = np.stack([series()[:50], series(seed=3)[:50]], axis=1)  # (T, 2)
    feed = {"h": np.zeros((2, 2, 8), np.float32), "seen": np.zeros(2, np.int64)}
    if diff:
        feed["last"] = np.zeros((2, 1))
    if cell == "lstm":
        feed["c"] = np.zeros((2, 2, 8), np.float32)
    streams = [run.stream(), run.stream()]
    for row in values:
        out = dict(zip([o.name for o in sess.get_outputs()],
                       sess.run(None, {"x": row[:, None], **feed}), strict=True))
        feed = {n: out[f"{n}_out"] for n in feed}
        for b, stream in enumerate(streams):
            expected = stream.update(row[b])
            if np.isnan(expected).all():
                assert np.isnan(out["y"][b]).all()
            else:
                np.testing.assert_allclose(out["y"][b], expected, rtol=RTOL, atol=1e-9)
    assert feed["seen"].tolist() == [50, 50]


def test_stateful_panel_export_steps_a_series_by_its_own_scaling(tmp_path: Path) -> None:
    panel = make_panel(3, 60)
    run = rnnkit.fit(panel, epochs=2, quiet=True, hidden_size=8, window=12, guard=False)
    path = export_onnx(run, tmp_path / "ps.onnx", stateful=True)
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    scales = json.loads(meta["series"])["s0002"]
    sess = session(path)
    need = run.pipeline.window + int(run.pipeline.diff)
    feed = {"buffer": np.zeros((1, need, 1)), "seen": np.zeros(1, np.int64),
            "shift": np.array([scales["shift"]]), "scale": np.array([scales["scale"]])}
    stream = run.stream(series="s0002")  # primed on the series' end; the graph is fed it
    own = panel.loc[panel.unique_id == "s0002", "y"].to_numpy()
    for value in [*own[-need:], *(own[-8:] * 1.05)]:
        y, feed["buffer"], feed["seen"] = sess.run(None, {"x": np.array([[value]]), **feed})
    expected = [stream.update(v) for v in own[-8:] * 1.05][-1]
    np.testing.assert_allclose(y[0], expected, rtol=RTOL)


@pytest.mark.parametrize(("transform", "horizon"), [("none", 1), ("diff", 1), ("none", 3)])
def test_a_run_with_calendar_and_future_features_exports_them_as_an_input(
        tmp_path: Path, transform: str, horizon: int) -> None:
    from rnnkit.data import calendar

    rng = np.random.default_rng(2)
    days = pd.date_range("2020-01-01", periods=400, freq="D")
    promo = (rng.random(420) < 0.2).astype(float)
    df = pd.DataFrame({"ds": days, "y": 10 + 4 * (days.day_of_week >= 5) + 3 * promo[:400]
                       + rng.normal(size=400), "promo": promo[:400]})
    run = rnnkit.fit(df, target="y", future_features=["promo"], calendar="weekday",
                     transform=transform, horizon=horizon, window=5, hidden_size=8, epochs=2,
                     quiet=True, guard=False)
    steps = 7
    path = export_onnx(run, tmp_path / "k.onnx", steps=steps)
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    known_meta = json.loads(meta["known"])
    assert known_meta["columns"][0] == "promo" and known_meta["calendar"] == ["weekday"]
    ahead = known_meta["rows_ahead"]
    need = run.pipeline.window + int(run.pipeline.diff)
    dates = pd.date_range(days[-need], periods=need + ahead, freq="D")
    known = np.column_stack([promo[400 - need: 400 + ahead],
                             calendar.encode(dates, ["weekday"], None)])
    got = session(path).run(None, {"history": df["y"].to_numpy()[None, -need:, None],
                                   "known": known[None]})
    plan = pd.DataFrame({"ds": dates[need:], "promo": promo[400: 400 + ahead]})
    ref = run.forecast(steps, future=plan)
    np.testing.assert_allclose(got[0][0, :, 0], ref["y"].to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(got[1][0, :, 0], ref["y_lo80"].to_numpy(), rtol=RTOL)
    # the one-step form takes x's row's known covariates and the horizon's rows after it
    stateful = session(export_onnx(run, tmp_path / "s.onnx", stateful=True)).get_inputs()
    assert [(i.name, i.shape[1:]) for i in stateful] == [
        ("x", [1]), ("known", [horizon + 1, 8]), ("buffer", [need, 9]), ("seen", [])]
