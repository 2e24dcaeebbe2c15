"""Every record's JSON form is written and read by pydantic: a record survives the trip through a
JSON file, NaN and infinity included, and files written by the hand-written methods before it
(``data/records.json``) still read back to the same record and are written the same way."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines.records import (
    InfFloat,
    Interval,
    JsonRecord,
    NanFloat,
    NightRecord,
    OptFloat,
    dump_record,
    load_record,
)
from pipelines.stages.evaluate.calibration import Breakpoints, CalibrationError, Calibrator
from tests.support.records import record_samples

GOLDEN: dict[str, Any] = json.loads((Path(__file__).parent / "data" / "records.json").read_text())
SAMPLES = record_samples()
WRITE_ONLY = ("Agreement",)  # a flat view of an estimate: written for reports, never read


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (a record holding NaN is not equal to itself)."""
    return dump_record(a) == dump_record(b)


def _through_file(record: Any) -> Any:
    text = json.dumps(record.to_dict(), allow_nan=False)  # as write_json writes metrics files
    return type(record).from_dict(json.loads(text))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip_through_a_json_file(name: str) -> None:
    record = SAMPLES[name]
    if name in WRITE_ONLY:
        json.dumps(record.to_dict(), allow_nan=False)
        return
    back = _through_file(record)
    assert type(back) is type(record)
    assert _same(back, record)
    if "NAN" not in repr(record).upper():  # NaN != NaN: compared above through its JSON form
        assert back == record


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_files_written_before_still_read_and_write_alike(name: str) -> None:
    record = SAMPLES[name]
    if name in WRITE_ONLY:
        assert record.to_dict() == GOLDEN[name]
        return
    read = type(record).from_dict(GOLDEN[name])
    assert _same(read, record)
    # written alike: every field the old file had, as it had it (fields added since then are
    # written beside them with their defaults)
    assert _within(GOLDEN[name], read.to_dict())
    assert _within(GOLDEN[name], record.to_dict())


def _within(old: Any, new: Any) -> bool:
    """``new`` holds everything ``old`` holds, the same; dicts may have gained keys."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(
            k in new and _within(v, new[k]) for k, v in old.items()
        )
    if isinstance(old, list):
        return isinstance(new, list) and len(old) == len(new) and all(map(_within, old, new))
    return bool(old == new)


def test_no_record_class_writes_its_own_json_form() -> None:
    for record in SAMPLES.values():
        assert isinstance(record, JsonRecord), type(record).__name__
        assert "to_dict" not in vars(type(record)) and "from_dict" not in vars(type(record))


def test_tuples_come_back_as_tuples_and_infinity_as_infinity() -> None:
    evaluation = SAMPLES["Evaluation"]
    back = _through_file(evaluation)
    assert isinstance(back.calibration, tuple) and isinstance(back.roc.thresholds, tuple)
    assert back.roc.thresholds[0] == math.inf
    assert evaluation.to_dict()["roc"]["thresholds"][0] is None
    assert math.isnan(back.metrics["log_loss"].point)


@dataclass(frozen=True)
class _Numbers(JsonRecord):
    nan: NanFloat
    inf: InfFloat
    opt: OptFloat
    plain: float


@pytest.mark.parametrize(
    ("value", "written", "nan", "inf", "opt"),
    [
        (math.nan, None, "nan", math.inf, None),
        (math.inf, None, "nan", math.inf, None),
        (-math.inf, None, "nan", math.inf, None),
        (0.25, 0.25, 0.25, 0.25, 0.25),
    ],
)
def test_numbers_json_has_no_word_for(
    value: float, written: float | None, nan: Any, inf: float, opt: float | None
) -> None:
    d = _Numbers(value, value, value, 1.0).to_dict()
    assert d == {"nan": written, "inf": written, "opt": written, "plain": 1.0}
    json.dumps(d, allow_nan=False)
    back = _Numbers.from_dict(d)
    assert math.isnan(back.nan) if nan == "nan" else back.nan == nan
    assert (back.inf, back.opt) == (inf, opt)


def test_a_plain_float_never_reads_null() -> None:
    with pytest.raises(ValueError, match="plain"):
        _Numbers.from_dict({"nan": 1, "inf": 1, "opt": 1, "plain": None})


@pytest.mark.parametrize(
    ("record", "data", "field"),
    [
        (Interval, {"point": 1.0, "lower": 0.5}, "upper"),
        (Interval, {"point": "high", "lower": 0.5, "upper": 1}, "point"),
        (NightRecord, {"date": "d", "started_at": "s", "reports": "r", "colour": 1}, "colour"),
        (NightRecord, {"date": "d", "started_at": "s", "reports": "r", "rows": "x"}, "rows"),
    ],
)
def test_bad_input_names_the_field(record: type, data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        load_record(record, data)


def test_a_calibrator_from_the_registry_is_still_checked() -> None:
    good = SAMPLES["Calibrator"].to_dict()
    with pytest.raises(CalibrationError, match="non-decreasing"):
        Calibrator.from_dict({**good, "scores": [0.9, 0.5, 0.1]})
    with pytest.raises(CalibrationError, match="method"):
        Calibrator.from_dict({**good, "method": "platt"})


def test_a_canary_decision_writes_its_hours_to_three_places() -> None:
    decision = dataclasses.replace(SAMPLES["CanaryDecision"], hours=2.00049)
    assert decision.to_dict()["hours"] == 2.0
    assert SAMPLES["Canary"].to_dict()["started"] == "2026-12-06T08:00:00+00:00"


def test_a_task_result_is_plain_json_for_its_xcom() -> None:
    from pipelines.airflow_adapter import Finished

    gate = {"verdict": "pass", "score": math.nan}
    d = Finished("2026-12-06", "promoted", "summary.json", [], "v4", "4", gate).to_dict()
    assert d["gate"] == {"verdict": "pass", "score": None}
    assert (d["failed"], d["mlflow"], d["promoted"]) == ([], {}, "4")
    json.dumps(d, allow_nan=False)


def test_any_interval_survives_a_json_file() -> None:
    """Seeded random intervals, awkward values included: a finite number comes back exactly,
    anything else (NaN, an infinity) as NaN, undefined, as the hand-written methods read it."""
    rng = random.Random(20)
    awkward = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-300, 1e300, 5e-324]
    for _ in range(500):
        values = [rng.choice(awkward) if rng.random() < 0.4 else rng.uniform(-9, 9) for _ in "abc"]
        back = _through_file(Interval(*values))
        for got, sent in zip((back.point, back.lower, back.upper), values, strict=True):
            assert got == sent if math.isfinite(sent) else math.isnan(got)


def test_any_calibrator_survives_a_json_file() -> None:
    rng = random.Random(21)

    def fit(n: int) -> Breakpoints:
        xs = sorted(rng.uniform(-5, 5) for _ in range(n))
        return Breakpoints(tuple(xs), tuple(sorted(rng.random() for _ in range(n))))

    for _ in range(100):
        main, reps = fit(rng.randint(1, 30)), tuple(fit(rng.randint(1, 5)) for _ in range(3))
        cal = Calibrator(main.scores, main.probabilities, rng.randint(2, 10**6), rng.random(), reps)
        assert _through_file(cal) == cal
