"""Rolling-origin backtest: origins in the held-out split, no peeking, per-step metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnkit
from rnnkit.cli.main import main
from rnnkit.errors import ConfigError, DataError
from rnnkit.evaluate.backtest import backtest, format_backtest, shown_steps
from rnnkit.inference import series_forecasts


def series(n: int = 300) -> np.ndarray:
    t = np.arange(n)
    return 10 + np.sin(2 * np.pi * t / 20) + 0.1 * np.random.default_rng(0).normal(size=n)


@pytest.fixture(scope="module")
def run():
    return rnnkit.fit(series(), window=20, hidden_size=4, epochs=3, transform="none",
                      quiet=True)


def test_origins_lie_in_the_test_split_and_leave_room(run):
    bt = backtest(run, k=5, steps=6)
    n = 300
    _, val_end = run.pipeline.bounds(n)
    assert bt.split == "test" and 1 <= len(bt.origins) <= 5
    assert bt.origins.min() >= val_end - 1 and bt.origins.max() + 6 <= n - 1
    assert bt.model.shape == bt.truth.shape == (len(bt.origins), 6, 1)
    assert set(bt.per_step) == {"model", *bt.baselines}
    assert all(len(v) == 6 for v in bt.per_step.values())


def test_truth_and_first_step_match_the_one_step_forecasts(run):
    bt = backtest(run, k=4, steps=5)
    values = np.asarray(run.data.dataset.values)
    for i, o in enumerate(bt.origins):
        assert np.allclose(bt.truth[i, :, 0], values[o + 1 : o + 6, 0])
    one_step = series_forecasts(run.model, run.pipeline, values, bt.origins)[:, 0]
    assert np.allclose(bt.model[:, 0], one_step)
    assert np.allclose(bt.baselines["last value"][:, 0, 0], values[bt.origins, 0])
    assert bt.per_step["model"][0]["rmse"] == pytest.approx(
        float(np.sqrt(np.mean((one_step[:, 0] - bt.truth[:, 0, 0]) ** 2))))


def test_forecasts_never_see_rows_after_their_origin(run):
    clean = series()
    first = backtest(run, k=3, steps=4, data=clean)
    o = int(first.origins[0])
    changed = clean.copy()
    changed[o + 1 :] += 100.0  # the future of the first origin, and everything after
    again = backtest(run, k=3, steps=4, data=changed)
    assert np.allclose(first.model[0], again.model[0])
    assert np.allclose(first.baselines["mean"][0], again.baselines["mean"][0])
    run.attach(clean)  # the module's run goes on with its own data


def test_validation_split_when_there_is_no_test_split():
    r = rnnkit.fit(series(), window=20, hidden_size=4, epochs=1, split=(0.8, 0.2, 0.0),
                   transform="none", quiet=True)
    assert backtest(r, k=3, steps=4).split == "validation"


def test_refusals(run):
    with pytest.raises(ConfigError, match="at least 1"):
        backtest(run, k=0)
    with pytest.raises(DataError, match="fewer --steps"):
        backtest(run, k=3, steps=200)
    seq = rnnkit.fit([[1.0, 2.0], [3.0, 4.0, 5.0]] * 10, target=[3.0, 12.0] * 10, epochs=1,
                     hidden_size=2, quiet=True)
    with pytest.raises(ConfigError, match="series runs"):
        backtest(seq, k=3)


def test_text_table(run):
    text = format_backtest(backtest(run, k=4, steps=14))
    lines = text.splitlines()
    assert lines[0].startswith("rolling-origin backtest: ")
    assert "model" in lines[2] and "last value" in lines[2]
    steps = [ln.split()[0] for ln in lines[4:-1]]
    assert steps == [*map(str, shown_steps(14)), "all"] and shown_steps(14)[-1] == 14
    assert lines[-1].startswith("The model beats every baseline at ")


def test_cli_evaluate_backtest(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    csv.write_text("t,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate(series())))
    rnnkit.fit(csv, target="y", window=20, hidden_size=4, epochs=2, quiet=True,
               out=tmp_path / "run")
    assert main(["evaluate", str(tmp_path / "run"), "--backtest", "4", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "rolling-origin backtest: 4 origins over the test split" in out
    assert main(["evaluate", str(tmp_path / "run"), "--backtest", "4", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["backtest"]
    assert len(got["per_step"]["model"]) == got["steps"] == 20  # one season by default
