"""The window of a long series, chosen on validation.

The default window is one season of the detected period (``data/choices.py``): 127 months
for the sunspots' 11-year cycle. The ridge AR that scores best on validation over that
window (``guard.best_ar``, orders 1 to the window) says how many past values carry signal;
when it needs fewer, the network gets that many, at least ``MIN_WINDOW``. Only where the
validation part is large enough to choose on (``rolling.FEW_VAL_FORECASTS`` forecasts or
more): on the short real series the AR's window (8 instead of 16 or 23) took realdpi,
tbilrate and unemp from 0.999-1.011x the best simple model to 1.03-1.04x.

Measured (seed 0, benchmarks/ACCURACY.md): monthly sunspots train on 32 values instead of
127, 3.8 s -> 1.2 s of training, test RMSE ratio to the best simple model 0.997 either way;
weekly CO2 keeps 52 (AR(52) is best), the 5,000-row daily series of ``make bench`` keeps 256.
"""

from __future__ import annotations

import numpy as np

from rnnkit.data.choices import MIN_WINDOW
from rnnkit.train.guard import best_ar, scorer_of, space_of


def validated(pipe: object, encoded: object) -> int:
    """The window for ``pipe``'s series: the validated AR order when it is shorter than the
    window, at least ``MIN_WINDOW``; else the window."""
    values = np.asarray(encoded.dataset.values)
    train, val = pipe.pairs(encoded, "train"), pipe.pairs(encoded, "val")
    if len(val) == 0 or len(train) < 4:
        return pipe.window
    order, _ = best_ar(train, val, space_of(pipe), scorer_of(pipe, values))
    return min(pipe.window, max(order, MIN_WINDOW))
