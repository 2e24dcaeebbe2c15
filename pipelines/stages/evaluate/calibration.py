"""A calibrator fitted on the held-out rows at evaluation: the model's score mapped to the
observed rate of the positive class, kept with the version so the monitor can estimate the
model's performance on live rows before their outcomes arrive
(:mod:`pipelines.monitor.estimate`).

Isotonic regression (monotone, so it never reorders the model's answers); what is kept is plain
data: its breakpoints (score, calibrated probability), applied by linear interpolation and
clipped at the ends, and the breakpoints of the same fit on bootstrap resamples of the held-out
rows (``replicates``): how far the calibration itself could be off, which an estimate's interval
carries. Stored as JSON (:data:`CALIBRATOR_FILE`) beside the model in the logged
model's folder, so it is one of the files the gate judges and registration signs; never a pickle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from pipelines.records import JsonRecord

CALIBRATOR_FILE = "calibrator.json"  # in the model's folder, among the signed files
METHOD = "isotonic"


class CalibrationError(ValueError):
    """A calibrator that cannot be fitted or read; the message says why."""


@dataclass(frozen=True)
class Breakpoints:
    """One isotonic fit: scores and their calibrated probabilities, both non-decreasing.
    Checked when made or read: a calibrator crosses a boundary (the registry)."""

    scores: tuple[float, ...]
    probabilities: tuple[float, ...]

    def __post_init__(self) -> None:
        _check_breakpoints(self.scores, self.probabilities)


@dataclass(frozen=True)
class Calibrator(JsonRecord):
    """Breakpoints of a monotone map from the model's score to a calibrated probability."""

    json_error: ClassVar[type[ValueError]] = CalibrationError

    scores: tuple[float, ...]  # non-decreasing
    probabilities: tuple[float, ...]  # non-decreasing, in [0, 1]
    rows: int  # held-out rows it was fitted on
    positive_rate: float  # their share of positives
    replicates: tuple[Breakpoints, ...] = ()  # bootstrap fits
    method: str = METHOD

    def __post_init__(self) -> None:
        if self.method != METHOD:
            raise CalibrationError(f"not an {METHOD} calibrator: method {self.method!r}")
        _check_breakpoints(self.scores, self.probabilities)

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for ``scores`` (clipped to the fitted range)."""
        s = np.asarray(scores, dtype=np.float64)
        out = np.interp(s, np.asarray(self.scores), np.asarray(self.probabilities))
        return np.asarray(np.clip(out, 0.0, 1.0), dtype=np.float64)

    def apply_replicates(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities under each bootstrap fit (replicates x rows); the main fit
        alone when there are none."""
        s = np.asarray(scores, dtype=np.float64)
        fits = self.replicates or (Breakpoints(self.scores, self.probabilities),)
        out = np.stack(
            [np.interp(s, np.asarray(f.scores), np.asarray(f.probabilities)) for f in fits]
        )
        return np.asarray(np.clip(out, 0.0, 1.0), dtype=np.float64)


def _check_breakpoints(xs: tuple[float, ...], ys: tuple[float, ...]) -> None:
    if not xs or len(xs) != len(ys):
        raise CalibrationError("breakpoints empty or of different lengths")
    if not all(math.isfinite(v) for v in xs + ys):
        raise CalibrationError("breakpoints must be finite numbers")
    if any(b < a for a, b in zip(xs, xs[1:], strict=False)) or any(
        b < a for a, b in zip(ys, ys[1:], strict=False)
    ):
        raise CalibrationError("breakpoints must be non-decreasing")
    if ys[0] < 0.0 or ys[-1] > 1.0:
        raise CalibrationError("calibrated probabilities must lie in [0, 1]")


def fit_calibrator(
    y: np.ndarray, scores: np.ndarray, replicates: int = 50, seed: int = 0
) -> Calibrator:
    """Isotonic regression of the labels on the scores of held-out rows, and ``replicates``
    refits on bootstrap resamples of them."""
    y = np.asarray(y).astype(np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if len(y) != len(s) or len(y) < 2:
        raise CalibrationError(f"need at least 2 rows with labels and scores, got {len(y)}")
    if not np.isfinite(s).all():
        raise CalibrationError("scores must be finite")
    if len(np.unique(y)) < 2:
        raise CalibrationError("a single class among the held-out labels: nothing to calibrate")
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(replicates):
        i = rng.integers(0, len(y), len(y))
        reps.append(_isotonic(y[i], s[i]))
    xs, ys = _isotonic(y, s)
    return Calibrator(xs, ys, len(y), float(y.mean()), tuple(Breakpoints(*r) for r in reps))


def _isotonic(y: np.ndarray, s: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
    return tuple(float(v) for v in iso.X_thresholds_), tuple(float(v) for v in iso.y_thresholds_)
