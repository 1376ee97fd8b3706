"""Time indexes: the frequency of a date column, and the times that come after its end.

Forecasts extend the data's own index, so the rules that describe an index (``index_info``,
``time_info``) and the ones that continue it (``extend_index``, ``future_times``) live together.
The frequency itself is inferred by ``timeline.frequency``, the rule the reader checks gaps
against, and a forecast follows the data's own calendar:

- trading days (weekdays, holidays missing) continue on trading days: the weekdays the data
  skips year after year by one calendar rule are its holidays (``learn_holidays``), skipped in
  forecasts too; a one-off closure is not;
- month, quarter and year ends stay ends and starts stay starts (pandas' anchored frequencies);
- an index with no regular frequency is ``irregular``: its forecasts are numbered 1, 2, ... steps
  after the last time (the index is named ``step after <last time>``), never given dates that
  the data does not imply.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
from dateutil.easter import easter
from pandas.tseries.frequencies import to_offset

from rnnkit.data.timeline import REGULAR_SHARE, frequency, infer_freq, when
from rnnkit.errors import CheckpointError

__all__ = ["closed_day", "extend_index", "future_times", "index_info", "infer_freq",
           "learn_holidays", "past_times", "time_info"]

HOLIDAY_MIN = 2  # a calendar rule is a holiday once its day was missing at least this often
EASTER_DAYS = 60  # days from Easter Sunday a holiday may fall (Good Friday -2, Whit Monday +50)
YEAR_DAYS = 240  # fewer trading days than a year has: how far ahead holidays are worked out
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MOVES = {"Sat>Fri": (5, -1), "Sun>Mon": (6, 1), "Sat>Mon": (5, 2)}  # weekend day, days moved
_ONE = dt.timedelta(days=1)
_RULE = re.compile(  # the rules of closed_day, checked before a saved run's are used
    r"(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])( (Sat>Fri|Sun>Mon|Sat>Mon))?"
    rf"|({'|'.join(_MONTHS)}) ({'|'.join(_DAYS[:5])}) ([1-4]|last)|Easter[+-]\d{{1,2}}")


# --- one series: the index of the data and of its forecasts ------------------------------------
def index_info(index: pd.Index, holidays: list[str] | None = None) -> dict:
    """How to extend ``index`` past its end (for forecasts), as plain JSON for config.json.

    ``holidays``: rules learned before (from the data a run was fitted on), kept for business
    days when ``index`` is too short to show its own (a few weeks of new data)."""
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 2:
        freq = frequency(index).freq  # business days too: forecasts continue on trading days
        if freq is None:  # no rule to continue it by: forecasts are numbered, not dated
            return {"kind": "irregular", "last": index[-1].isoformat(), "name": index.name}
        info = {"kind": "datetime", "last": index[-1].isoformat(), "freq": freq, "step": None,
                "name": index.name}
        return _with_holidays(info, index, holidays)
    return {"kind": "range", "last": int(len(index) - 1), "name": index.name}


def extend_index(info: dict, steps: int) -> pd.Index:
    """The ``steps`` index values after the end described by ``index_info`` (same name, so a
    forecast CSV has the same first column as the data and its predictions). An irregular
    index gives steps 1..``steps`` named ``step after <last time>``."""
    name = info.get("name")
    if _irregular(info):
        return pd.RangeIndex(1, steps + 1, name=f"step after {when(pd.Timestamp(info['last']))}")
    if info.get("kind") == "datetime":
        last = pd.Timestamp(info["last"])
        freq = _offset(info, range(last.year, last.year + steps // YEAR_DAYS + 3))
        return _after(last, steps, freq).rename(name)
    start = int(info.get("last", -1)) + 1
    return pd.RangeIndex(start, start + steps, name=name)


# --- a panel: every series from its own last time ----------------------------------------------
def time_info(times: np.ndarray | None, offsets: np.ndarray) -> dict:
    """How to step each series' time past its end: a pandas frequency, a whole-number step,
    +1 rows, or ``irregular`` (steps numbered after each series' last time). ``times`` holds
    every series' times one after another, series i at offsets[i]:offsets[i+1] (None when the
    panel has no time column); the longest series decides."""
    if times is None:
        return {"kind": "row", "step": 1}
    i = int(np.argmax(np.diff(offsets)))
    t = times[offsets[i] : offsets[i + 1]]
    if times.dtype.kind == "M":
        index = pd.DatetimeIndex(t)
        freq = frequency(index).freq
        ends = pd.DatetimeIndex(np.unique(times[offsets[1:] - 1]))  # series often end together
        # a series that ends off the frequency (a month end among month starts) would be moved
        # onto it by the first forecast step: no frequency holds for the panel
        if freq is None or not all(map(to_offset(freq).is_on_offset, ends)):
            return {"kind": "irregular"}
        step = str(pd.Series(t).diff().median())
        return _with_holidays({"kind": "datetime", "freq": freq, "step": step}, index)
    if len(t) < 3:
        return {"kind": "int", "step": max(int(np.median(np.diff(t))) if len(t) == 2 else 1, 1)}
    diffs = np.diff(t)  # the reader's rule (panel_time): the most common step, all multiples
    values, counts = np.unique(diffs, return_counts=True)
    step = int(values[np.argmax(counts)])
    if step <= 0 or (diffs % step).any() or counts.max() < REGULAR_SHARE * len(diffs):
        return {"kind": "irregular"}
    return {"kind": "int", "step": step}


def future_times(info: dict, last: np.ndarray, steps: int) -> np.ndarray:
    """(S, steps) times after each series' last time ``last`` (S,); irregular: 1..steps."""
    if _irregular(info):
        return np.tile(np.arange(1, steps + 1, dtype=np.int64), (len(last), 1))
    if info["kind"] == "datetime":
        lasts = pd.DatetimeIndex(last.astype("datetime64[ns]"))
        freq = _offset(info, range(lasts.min().year, lasts.max().year + steps // YEAR_DAYS + 3))
        shared = _shared_after(lasts, steps, freq)
        if shared is not None:
            return shared
        return np.stack([_after(t, steps, freq).to_numpy() for t in lasts])
    return last.astype(np.int64)[:, None] + int(info["step"]) * np.arange(1, steps + 1)[None, :]


def past_times(info: dict, last: np.ndarray, rows: int) -> np.ndarray:
    """(S, rows) times of the last ``rows`` rows of each series, ending at ``last`` (S,):
    ``future_times`` run backwards, by the same frequency or step; irregular: 1-rows..0, the
    numbering of ``future_times`` (0 is the last time)."""
    if _irregular(info):
        return np.tile(np.arange(1 - rows, 1, dtype=np.int64), (len(last), 1))
    if info["kind"] == "datetime":
        lasts = pd.DatetimeIndex(last.astype("datetime64[ns]"))
        freq = _offset(info, range(lasts.min().year - rows // YEAR_DAYS - 2, lasts.max().year + 2))
        return np.stack([_before(t, rows, freq).to_numpy() for t in lasts])
    back = np.arange(rows - 1, -1, -1)[None, :]
    return last.astype(np.int64)[:, None] - int(info["step"]) * back


# --- stepping ----------------------------------------------------------------------------------
def _irregular(info: dict) -> bool:
    """No frequency to step by. Run folders written before "irregular" existed say "datetime"
    without a frequency (and a median step): they are irregular too, not continued by a guess."""
    return info.get("kind") == "irregular" or (info.get("kind") == "datetime"
                                               and not info.get("freq"))


def _offset(info: dict, years: range) -> str | pd.offsets.CustomBusinessDay:
    """The frequency to step by: pandas' own, or business days less the learned holidays of
    ``years`` (info dicts from before holidays were learned have none: plain business days)."""
    rules = info.get("holidays") or []
    if not rules:
        return info["freq"]
    wrong = [r for r in rules if not (isinstance(r, str) and _RULE.fullmatch(r))]
    if wrong:  # only a hand-edited config.json gets here
        raise CheckpointError(
            f"config.json: holiday rule {wrong[0]!r} is not one rnnkit reads (such as '12-25', "
            f"'12-25 Sat>Fri', 'Nov Thu 4', 'May Mon last', 'Easter-2'); correct or remove it "
            f"from \"holidays\", or fit the run again.")
    closed = [day for rule in rules for year in years if (day := closed_day(rule, year))]
    return pd.offsets.CustomBusinessDay(holidays=closed)


def _after(last: pd.Timestamp, steps: int, freq: object) -> pd.DatetimeIndex:
    """The ``steps`` times of ``freq`` after ``last`` (``last`` itself may be off ``freq``: a
    day the data has that the calendar closes)."""
    times = pd.date_range(last, periods=steps + 1, freq=freq)
    return times[1:] if times[0] == last else times[:steps]


def _shared_after(lasts: pd.DatetimeIndex, steps: int, freq: object) -> np.ndarray | None:
    """``_after`` of every time in ``lasts`` from one grid of ``freq`` (one ``date_range``,
    not one per series of a large panel), or None when some time is off that grid."""
    grid = pd.date_range(lasts.min(), lasts.max(), freq=freq)
    grid = pd.date_range(lasts.min(), periods=len(grid) + steps + 1, freq=freq)
    pos = np.minimum(grid.searchsorted(lasts), len(grid) - 1)
    if not (grid[pos] == lasts).all():
        return None
    return grid.to_numpy()[pos[:, None] + np.arange(1, steps + 1)[None, :]]


def _before(last: pd.Timestamp, rows: int, freq: object) -> pd.DatetimeIndex:
    """``rows`` times of ``freq`` ending at ``last`` (kept even when off ``freq``)."""
    times = pd.date_range(end=last, periods=rows, freq=freq)
    return times if times[-1] == last else times[1:].append(pd.DatetimeIndex([last]))


# --- trading days: the data's own holidays -----------------------------------------------------
def _with_holidays(info: dict, index: pd.DatetimeIndex, known: list[str] | None = None
                   ) -> dict:
    """``info`` with the learned ``holidays`` of a business-day index (when it has any; else
    the ``known`` ones)."""
    if info["freq"] == "B" and (rules := learn_holidays(index) or list(known or [])):
        info["holidays"] = rules
    return info


def learn_holidays(index: pd.DatetimeIndex) -> list[str]:
    """The calendar rules by which a business-day index skips weekdays year after year: its own
    market holidays, for forecasts to skip. Rules are those of ``closed_day``.

    Why this rule: a holiday recurs by a calendar rule and a one-off closure (a storm, a
    funeral) does not. So every rule that would close a missing weekday is a candidate (its
    date, its nth or last weekday of the month, its distance from Easter), and it holds when,
    from the first year its day was missing, the day was missing at least ``HOLIDAY_MIN`` times
    and in more than half of those years (a holiday introduced late counts; chance does not).
    The rule explaining most missing days is taken first (ties: dates, weekdays of a month,
    Easter, then by name: deterministic), and the days it explains are set aside, so a
    Memorial-Day "last Monday" does not also make "4th Monday" a holiday. A date's weekend
    move (``Sat>Fri``, ``Sun>Mon``, ``Sat>Mon``) is seen once in about seven years, so it needs
    its date taken and one missing day.

    Example:
        >>> days = pd.bdate_range("2015-01-01", "2019-12-31")
        >>> learn_holidays(days[~((days.month == 12) & (days.day == 25))])
        ['12-25']
    """
    days = (index.tz_localize(None) if index.tz is not None else index).normalize()
    missing = set(pd.bdate_range(days[0], days[-1]).difference(days).date)
    if len(missing) < HOLIDAY_MIN:
        return []
    first, last = days[0].date(), days[-1].date()
    years = range(first.year, last.year + 2)  # "01-01 Sat>Fri" of next year closes 31 Dec
    rules = sorted({rule for day in missing for rule in _rules_for(day)}, key=_rule_order)
    seen = {rule: [d for y in years if (d := closed_day(rule, y)) and first <= d <= last]
            for rule in rules}
    explained: set[dt.date] = set()
    taken = _take([r for r in rules if not _is_move(r)], seen, missing, explained, HOLIDAY_MIN)
    moves = [r for r in rules if _is_move(r) and r.split()[0] in taken]
    return sorted(taken + _take(moves, seen, missing, explained, 1), key=_rule_order)


def _take(rules: list[str], seen: dict[str, list[dt.date]], missing: set[dt.date],
          explained: set[dt.date], least: int) -> list[str]:
    """Rules taken greedily (most missing days first) until none holds; adds their days to
    ``explained``. ``seen``: each rule's weekdays within the data."""
    taken: list[str] = []
    while True:
        best, most = "", 0
        for rule in rules:  # in _rule_order: the first of equals wins
            kept = _kept(seen[rule], missing, explained, least)
            if kept > most:
                best, most = rule, kept
        if not best:
            return taken
        taken.append(best)
        explained.update(seen[best])


def _kept(days: list[dt.date], missing: set[dt.date], explained: set[dt.date], least: int
          ) -> int:
    """The missing days of a rule's ``days`` when they make it a holiday, else 0: from the
    first missing one on, at least ``least`` and more than half (days other rules explain
    do not count either way)."""
    flags = [d in missing for d in days if d not in explained]
    if True not in flags:
        return 0
    since = flags[flags.index(True):]
    kept = sum(since)
    return kept if kept >= least and 2 * kept > len(since) else 0


def _rules_for(day: dt.date) -> list[str]:
    """Every rule that closes ``day`` (a weekday)."""
    name = f"{_MONTHS[day.month - 1]} {_DAYS[day.weekday()]}"
    rules = [f"{day:%m-%d}"]
    if day.day <= 28:  # a 5th weekday is always the last
        rules.append(f"{name} {(day.day - 1) // 7 + 1}")
    if (day + 7 * _ONE).month != day.month:
        rules.append(f"{name} last")
    if abs(shift := (day - easter(day.year)).days) <= EASTER_DAYS:
        rules.append(f"Easter{shift:+d}")
    for move, (weekend, by) in _MOVES.items():
        if (date := day - by * _ONE).weekday() == weekend:
            rules.append(f"{date:%m-%d} {move}")
    return rules


def _is_move(rule: str) -> bool:
    """A date's weekend move (``12-25 Sat>Fri``)."""
    return rule[0].isdigit() and " " in rule


def _rule_order(rule: str) -> tuple[int, str]:
    """Dates first, then weekdays of a month, then days from Easter; by name within."""
    return (0 if rule[0].isdigit() else 2 if rule.startswith("Easter") else 1, rule)


def closed_day(rule: str, year: int) -> dt.date | None:
    """The weekday a holiday ``rule`` closes in ``year``, or None (a weekend, or no such date).

    Rules: ``12-25`` (the date); ``12-25 Sat>Fri`` (the Friday before, when 25 Dec is a
    Saturday; ``Sun>Mon`` and ``Sat>Mon`` the Monday after); ``Nov Thu 4`` (the 4th Thursday
    of November; ``May Mon last``); ``Easter-2`` (days from Easter Sunday: Good Friday).

    Example:
        >>> closed_day("Nov Thu 4", 2020), closed_day("07-04 Sat>Fri", 2020)
        (datetime.date(2020, 11, 26), datetime.date(2020, 7, 3))
    """
    words = rule.split()
    if rule.startswith("Easter"):
        day = easter(year) + int(rule[6:]) * _ONE
    elif rule[0].isdigit():
        try:
            day = dt.date(year, int(rule[:2]), int(rule[3:5]))
        except ValueError:  # 02-29 outside leap years
            return None
        if len(words) == 2:
            weekend, by = _MOVES[words[1]]
            return day + by * _ONE if day.weekday() == weekend else None
    else:
        day = _nth_weekday(year, _MONTHS.index(words[0]) + 1, _DAYS.index(words[1]), words[2])
    return day if day.weekday() < 5 else None


def _nth_weekday(year: int, month: int, weekday: int, nth: str) -> dt.date:
    """The ``nth`` ("1".."4" or "last") ``weekday`` (0 = Monday) of a month."""
    if nth == "last":
        end = dt.date(year + month // 12, month % 12 + 1, 1) - _ONE
        return end - ((end.weekday() - weekday) % 7) * _ONE
    start = dt.date(year, month, 1)
    return start + ((weekday - start.weekday()) % 7 + 7 * (int(nth) - 1)) * _ONE
