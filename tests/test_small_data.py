"""Too little data (reliability row 29): refused before anything is written, with the rows
given, the rows needed and the fix; between that and a sensible size, a FewPointsWarning.

The rule (docs/reliability.md, row 29): every series must give a complete forecast in the
training part, in the validation part (early stopping reads it) and in the test part (the
scores), for the split given (a part of fraction 0 is not asked for). Fewer than
``FEW_POINTS`` scored forecasts (test, or validation without a test part) warns.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers_panel import make_panel

import rnnkit
from rnnkit.config import DataConfig
from rnnkit.data.panel import PanelPipeline
from rnnkit.data.read import read_table
from rnnkit.data.read_panel import read_panel
from rnnkit.data.sequences import SequencePipeline, SequenceSet, as_sequences
from rnnkit.data.series import FEW_POINTS, SeriesPipeline, rows_needed, short_series
from rnnkit.errors import ConfigError, DataError, FewPointsWarning

TINY = dict(hidden_size=2, epochs=1, quiet=True)
FIVE_ROWS = "t,y\n1,2.0\n2,3.5\n3,1.0\n4,4.0\n5,2.5\n"


def series_table(n: int):
    return read_table(np.sin(np.arange(n) / 3.0) + 0.01 * np.arange(n))


def files_under(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*"))


# --- refused: the 5-row CSV ------------------------------------------------------------------
def test_row29_five_row_csv_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, cli) -> None:
    (tmp_path / "d.csv").write_text(FIVE_ROWS)
    before = files_under(tmp_path)
    for out in ([], ["--out", "run"]):  # the default run folder, and a named one
        code, stdout, err = cli("fit", "d.csv", "--target", "y", *out, cwd=tmp_path)
        assert code == 2 and stdout == "", err
        assert err.startswith("rnnkit: error: d.csv: the series has 5 rows") and err.count(
            "\n") == 1, err
        assert "needs at least 3 for one forecast and 6 for" in err
        assert "--window" in err and "--split" in err
        assert files_under(tmp_path) == before  # no run folder left behind


def test_row29_five_rows_through_fit_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(FIVE_ROWS)
    with pytest.raises(DataError) as info:
        rnnkit.fit(tmp_path / "d.csv", target="y", out=tmp_path / "run", **TINY)
    msg = str(info.value)
    assert "the series has 5 rows" in msg and "6 for a complete forecast in each of the " \
        "training, validation and test parts (split 0.7/0.15/0.15)" in msg
    assert "\n" not in msg and "--window" in msg and "--split" in msg
    assert files_under(tmp_path) == [Path("d.csv")]


def test_rows_needed_is_the_boundary() -> None:
    for window, horizon, diff, split in [(2, 1, False, (0.7, 0.15, 0.15)),
                                         (12, 3, True, (0.8, 0.1, 0.1)),
                                         (5, 2, False, (0.6, 0.4, 0.0))]:
        need = rows_needed(window, horizon, diff, split)
        assert short_series(need - 1, window, horizon, diff, split)
        assert not short_series(np.arange(need, need + 500), window, horizon, diff, split).any()
        cfg = DataConfig(window=window, horizon=horizon, split=split,
                         transform="diff" if diff else "none")
        with pytest.raises(DataError, match=f"has {need - 1} rows.*needs at least "
                                            f"{window + horizon + diff} for one forecast and "
                                            f"{need} for a complete forecast"):
            SeriesPipeline.fit(series_table(need - 1), cfg)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewPointsWarning)  # tiny on purpose
            pipe, _ = SeriesPipeline.fit(series_table(need), cfg)
        assert all(len(pipe.origins(p, need)) > 0 for p in ("train", "val", "test")
                   if p != "test" or split[2] > 0)


def test_a_split_without_validation_or_test_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"split 1/0/0 leaves no validation or test part"):
        SeriesPipeline.fit(series_table(300), DataConfig(window=8, split=(1.0, 0.0, 0.0)))


# --- warned: enough to score, too few to trust ----------------------------------------------
def test_few_test_forecasts_warn_and_a_sensible_size_does_not() -> None:
    cfg = DataConfig(window=8, transform="none")
    with pytest.warns(FewPointsWarning) as caught:
        pipe, _ = SeriesPipeline.fit(series_table(100), cfg)
    msg = str(caught[0].message)
    scored = len(pipe.origins("test", 100))
    assert scored < FEW_POINTS
    assert (f"the test part gives only {scored} forecasts (fewer than {FEW_POINTS})" in msg
            and "rest on few points" in msg and "--split" in msg and "\n" not in msg)
    # 220 rows: 33 test rows, 33 forecasts of one step
    pipe, _ = SeriesPipeline.fit(series_table(220), cfg)  # warnings are errors in the tests
    assert len(pipe.origins("test", 220)) >= FEW_POINTS


def test_without_a_test_part_the_validation_forecasts_count() -> None:
    cfg = DataConfig(window=8, transform="none", split=(0.8, 0.2, 0.0))
    with pytest.warns(FewPointsWarning, match="the validation part gives only 20 forecasts"):
        SeriesPipeline.fit(series_table(100), cfg)
    SeriesPipeline.fit(series_table(200), cfg)  # 39 validation forecasts: no warning


def test_cli_prints_the_warning_as_one_line_and_trains(tmp_path: Path, cli) -> None:
    n = 100
    (tmp_path / "d.csv").write_text("y\n" + "".join(f"{np.sin(i / 3):.4f}\n" for i in range(n)))
    code, _, err = cli("fit", "d.csv", "--window", "8", "--transform", "none", "--epochs", "1",
                       "--hidden-size", "2", "--quiet", "--out", "run", cwd=tmp_path)
    assert code == 0, err
    lines = [line for line in err.splitlines() if "few points" in line]
    assert len(lines) == 1 and lines[0].startswith(
        "rnnkit: warning: d.csv: the test part gives only 15 forecasts"), err
    assert (tmp_path / "run" / "model.safetensors").is_file()


# --- panels: the same rule, per series -------------------------------------------------------
def test_panel_series_without_a_validation_or_test_forecast_count_as_short() -> None:
    # 16 rows hold one 12 + 1 window, but leave no complete validation forecast
    df = make_panel(3, 60)
    short = make_panel(1, 16, seed=1).assign(unique_id="short0000")
    panel = read_panel(pd.concat([df, short], ignore_index=True))
    assert short_series(16, 12, 1, False, (0.7, 0.15, 0.15))
    need = rows_needed(12, 1, False, (0.7, 0.15, 0.15))
    cfg = DataConfig(window=12, transform="none")
    with pytest.raises(DataError, match=rf"1 of 4 series have fewer than {need} rows \(window 12 "
                                        r"\+ horizon 1, and a complete forecast in each part of "
                                        r"split 0\.7/0\.15/0\.15\): short0000; pass --skip-short"):
        PanelPipeline.fit(panel, cfg)
    with pytest.warns(FewPointsWarning, match=r"only 27 forecasts over 3 series"):
        pipe, kept = PanelPipeline.fit(read_panel(pd.concat([df, short], ignore_index=True)),
                                       DataConfig(window=12, transform="none", skip_short=True))
    assert kept.ids == ["s0000", "s0001", "s0002"] and len(pipe.shift) == 3
    assert any(note.startswith("skipped 1 of 4 series") for note in kept.notes)


def test_panel_pools_its_scored_forecasts() -> None:
    # 10 series x 9 test rows: each alone would warn, the pooled score rests on 90 forecasts
    PanelPipeline.fit(read_panel(make_panel(10, 60)), DataConfig(window=12, transform="none"))


# --- sequences: one validation and one test sequence -----------------------------------------
def test_too_few_sequences_are_refused_through_fit(tmp_path: Path) -> None:
    seqs = [[1.0, 2.0, 3.0], [2.0, 3.0], [0.5, 1.0, 1.5, 2.0], [3.0, 2.0], [1.0, 1.0]]
    with pytest.raises(DataError, match=r"5 sequences are too few: split 0\.7/0\.15/0\.15 needs "
                                        r"at least 6 to give a training, a validation and a test "
                                        r"sequence .*--split"):
        rnnkit.fit(seqs, target=[6.0, 5.0, 5.0, 5.0, 2.0], out=tmp_path / "run", **TINY)
    assert files_under(tmp_path) == []


def test_few_test_sequences_warn() -> None:
    rng = np.random.default_rng(0)
    data = SequenceSet(as_sequences(rng.standard_normal((40, 6))))
    cfg = DataConfig(shape="next")
    with pytest.warns(FewPointsWarning, match=r"the test part gives only 6 sequences"):
        SequencePipeline.fit(data, cfg)
    SequencePipeline.fit(SequenceSet(as_sequences(rng.standard_normal((200, 6)))), cfg)
