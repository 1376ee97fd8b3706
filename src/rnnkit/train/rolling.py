"""Rolling-origin validation for the guard on short series.

With 15 % of a 100-row series held out, the guard (``train/guard.py``) would choose among ten
candidates on 15 forecasts; which of two close simple models wins there is mostly noise, and
it shows on the test part (realdpi: ETS won on validation, 4 % behind AR on test). So when
the validation part gives fewer than ``FEW_VAL_FORECASTS`` forecasts, the same fit (data
choices, network, simple models, all refitted) is repeated on earlier cuts of the series:
cut ``j`` trains on the rows before ``train_end - j * block`` and validates on the ``block``
rows after them, ``block`` being the validation part's size. The guard then chooses the
recipe with the lowest validation MSE averaged over every cut. The test rows are never
read: every cut ends at or before the validation part's end.

Measured on the 13 short real series (the Nile and the 12 macro columns, seed 0,
benchmarks/ACCURACY.md): with the validation part alone the worst test ratio to the best
simple model was 1.039 (two series above 1.02); over 3 blocks 1.037 (realint), over 4 or 5
blocks 1.017, hence ``FOLDS``. Cuts too short to pin down the linear map over their window
are not scored (``earlier_errors``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from rnnkit.errors import DataError
from rnnkit.models.least_squares import identifiable
from rnnkit.train.guard import Scored, score, space_of

FOLDS = 5  # cuts scored in all, the fit's own validation part included
FEW_VAL_FORECASTS = 100  # fewer validation forecasts than this: score earlier cuts too

# fits the run's recipe on the first ``rows`` rows with this split -> (model, pipe, encoded)
FitRows = Callable[[int, tuple[float, float, float]], tuple[object, object, object]]


def wanted(val_forecasts: int) -> bool:
    """Whether the validation part is too small to choose on alone."""
    return 0 < val_forecasts < FEW_VAL_FORECASTS


def cuts(train_end: int, val_end: int, folds: int = FOLDS) -> list[tuple[int, tuple]]:
    """(rows, split fractions) of each earlier cut, latest first: the cut's training part
    ends ``j`` validation blocks before the fit's, and its validation block follows it."""
    block = val_end - train_end
    out = []
    for j in range(1, folds):
        cut = train_end - j * block
        if cut <= 0 or block <= 0:
            break
        rows = cut + block
        out.append((rows, (cut / rows, block / rows, 0.0)))
    return out


def earlier_errors(fit_rows: FitRows, train_end: int, val_end: int
                   ) -> list[dict[str, np.ndarray]]:
    """Each earlier cut's validation errors by recipe (``guard.score``), latest first; a cut
    too short to fit, to pin down the linear map over its window, or to score ends the list
    (those before it are shorter still). Why the linear map: on a cut with fewer windows
    than that, AR and the least-squares start are guesses, and one such cut's errors can
    outweigh all the others (the pop column at ``--window 8``: its 20-row cut scored AR
    at 0.138 against 0.036-0.055 on the other cuts, and the average chose ETS + AR, 1.61x
    the best simple model on test)."""
    out = []
    for rows, split in cuts(train_end, val_end):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fit's own warnings said it already
            try:
                model, pipe, encoded = fit_rows(rows, split)
            except DataError:
                break
            if not identifiable(len(pipe.pairs(encoded, "train")),
                                pipe.window * space_of(pipe).inputs):
                break
            scored = score(model, pipe, encoded)
        if not isinstance(scored, Scored):
            break
        out.append(scored.errors)
    return out
