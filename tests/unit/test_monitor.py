"""The monitor's core on real Adult rows: live drift, live performance against the evaluated
baseline with its interval, the retrain decision, labelled rows as a landing batch, and the
outcomes file's errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.monitor.labels import LabelsError, read_outcomes
from pipelines.monitor.live import assess_live, landing_rows, live_frame
from pipelines.monitor.metrics import NAMES, registry_of


@pytest.fixture(scope="module")
def model(prefit):
    return prefit["a"]


def _logged(frame: pd.DataFrame, model, params, version="1", arm="champion") -> pd.DataFrame:
    """What the prediction log holds for these rows (and, with labels, what `joined` gives)."""
    from pipelines.stages.train import positive_proba

    feats = list(params.dataset.features.all)
    X = frame[feats]
    out = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(len(frame))],
            "row": 0,
            "ts": pd.Timestamp.now(tz="UTC"),
            "model_version": version,
            "arm": arm,
            "probability": positive_proba(model, X),
        }
    )
    out = pd.concat([out, X.reset_index(drop=True)], axis=1)
    out["label"] = frame[params.dataset.target].to_numpy()
    return out


def _params(params, **monitor):
    return params.model_copy(
        update={
            "monitor": params.monitor.model_copy(update=monitor),
            "evaluate": params.evaluate.model_copy(update={"bootstrap_samples": 200}),
        }
    )


def test_stable_traffic_asks_for_nothing(params, model, adult_reference, adult_current):
    p = _params(params)
    logged = _logged(adult_current.sample(2000, random_state=1), model, p)
    v = assess_live(adult_reference, logged, logged, p, baseline=None, champion_version="1", at="t")
    assert v.retrain is False
    assert v.drift_share is not None and v.drift_share < p.monitor.max_drift_share
    assert v.live is not None and v.live["lower"] <= v.live["point"] <= v.live["upper"]
    assert any("no evaluated baseline" in r for r in v.reasons)


def test_drifted_population_and_performance_drop_ask_for_a_retrain(
    params, model, adult_reference, adult_current
):
    p = _params(params)
    old = adult_current[adult_current["age"] > adult_current["age"].quantile(0.85)]
    logged = _logged(old.sample(1500, random_state=2, replace=True), model, p)
    # a baseline well above what the model reaches on these people: the drop is judged on the
    # top of the live interval
    v = assess_live(adult_reference, logged, logged, p, baseline=0.99, champion_version="1", at="t")
    assert v.retrain is True
    assert "age" in v.drifted_columns and v.drift_share >= p.monitor.max_drift_share
    assert v.drop == pytest.approx(0.99 - v.live["upper"]) and v.drop > 0.03
    assert any(r.startswith("live drift:") for r in v.reasons)
    assert any("below the evaluated 0.990" in r for r in v.reasons)
    # and the numbers reach Prometheus under the published names
    text = _exposition(registry_of(v, {"outcome": "promoted", "timestamp": 1.0}, 0.2))
    assert 'retrain_live_drifted{column="age"} 1.0' in text
    assert 'retrain_live_metric{bound="high",metric="roc_auc"}' in text
    assert {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"
    } <= set(NAMES)


def test_too_few_rows_are_not_judged(params, model, adult_reference, adult_current):
    p = _params(params)
    logged = _logged(adult_current.head(50), model, p)
    v = assess_live(adult_reference, logged, logged, p, baseline=0.9, champion_version="1", at="t")
    assert v.retrain is False and v.drift is None and v.live is None
    assert any("fewer than 200" in r for r in v.reasons)


def test_shadow_answers_are_not_judged_twice_nor_landed(params, model, adult_current):
    p = _params(params)
    rows = adult_current.head(300)
    champ = _logged(rows, model, p)
    shadow = _logged(rows, model, p, version="2", arm="shadow")
    both = pd.concat([champ, shadow], ignore_index=True)
    assert len(live_frame(both, p)) == 300
    landed = landing_rows(both, p)
    assert len(landed) == 300
    # as an accepted batch: the dataset's column order (the holdout hashes rows by content)
    wanted = {*p.dataset.features.all, p.dataset.target}
    assert list(landed.columns) == [c for c in p.dataset.columns if c in wanted]
    from pipelines.stages.window import holdout_mask

    again = rows[list(landed.columns)].reset_index(drop=True)
    assert np.array_equal(holdout_mask(landed, 0.3, 0), holdout_mask(again, 0.3, 0))
    assert np.array_equal(landed[p.dataset.target], rows[p.dataset.target])


def test_outcome_files_are_checked_with_the_problem_named(params, tmp_path):
    ok = tmp_path / "ok.csv"
    ok.write_text("request_id,row,income\nabc,0,>50K.\nabd,2,<=50K\n")
    got = read_outcomes(ok, params)
    assert list(got.label) == [">50K", "<=50K"] and list(got.row) == [0, 2]
    bad = tmp_path / "bad.csv"
    bad.write_text("request_id,label\na,>50K\nb,yes\n")
    with pytest.raises(LabelsError, match=r"'yes'.*lines \[3\]"):
        read_outcomes(bad, params)
    noid = tmp_path / "noid.csv"
    noid.write_text("id,label\na,>50K\n")
    with pytest.raises(LabelsError, match="no 'request_id' column"):
        read_outcomes(noid, params)
    with pytest.raises(LabelsError, match="no such file"):
        read_outcomes(tmp_path / "missing.csv", params)


def _exposition(reg) -> str:
    from prometheus_client import generate_latest

    return generate_latest(reg).decode()


@pytest.fixture(scope="module")
def calibrator(params, model, adult_current):
    """The model's calibrator as the evaluate stage fits it, on held-out rows (not the live
    rows the tests below log)."""
    from pipelines.stages.evaluate.calibration import fit_calibrator
    from pipelines.stages.train import positive_proba

    held = adult_current.head(6000)
    y = (held[params.dataset.target] == params.dataset.positive_label).to_numpy()
    return fit_calibrator(y, positive_proba(model, held[list(params.dataset.features.all)]))


def test_the_metric_is_estimated_before_outcomes_and_holds_when_they_come(
    params, model, adult_reference, adult_current, calibrator
):
    p = _params(params)
    logged = _logged(adult_current.iloc[6000:].sample(3000, random_state=3), model, p)
    none = logged.head(0)  # no outcome arrived yet
    v = assess_live(
        adult_reference, logged, none, p, baseline=0.9, champion_version="1", at="t",
        calibrator=calibrator,
    )  # fmt: skip
    assert v.live is None and v.estimated is not None
    assert v.estimated["lower"] <= v.estimated["point"] <= v.estimated["upper"]
    assert v.estimated["rows"] == 3000
    assert v.estimated_drop == pytest.approx(0.9 - v.estimated["upper"])
    assert v.concept_change is None and "estimated roc_auc" in v.summary()
    # the outcomes arrive: the realised metric falls inside the estimate's interval
    later = assess_live(
        adult_reference, logged, logged, p, baseline=0.9, champion_version="1", at="t",
        calibrator=calibrator,
    )  # fmt: skip
    cc = later.concept_change
    assert cc is not None and cc["outside"] is False
    assert cc["realised"] == pytest.approx(later.live["point"])
    assert any(r.startswith("estimate holds") for r in later.reasons)
    text = _exposition(registry_of(later))
    assert 'retrain_live_estimated_metric{bound="low",metric="roc_auc"}' in text
    assert "retrain_live_concept_change 0.0" in text


def test_outcomes_that_disagree_with_the_estimate_are_a_likely_concept_change(
    params, model, adult_reference, adult_current, calibrator
):
    p = _params(params, metric="accuracy")
    rows = adult_current.iloc[6000:].sample(3000, random_state=4).copy()
    # the same people, but among the married a third of the outcomes turned the other way
    ds = p.dataset
    rng = np.random.default_rng(0)
    flip = rows["marital-status"].str.startswith("Married").to_numpy() & (
        rng.random(len(rows)) < 1 / 3
    )
    neg = ds.negative_label
    rows.loc[flip, ds.target] = np.where(
        rows.loc[flip, ds.target] == ds.positive_label, neg, ds.positive_label
    )
    logged = _logged(rows, model, p)
    v = assess_live(
        adult_reference, logged, logged, p, baseline=None, champion_version="1", at="t",
        calibrator=calibrator,
    )  # fmt: skip
    assert v.concept_change is not None and v.concept_change["outside"] is True
    assert v.concept_change["gap"] < 0
    assert any(r.startswith("likely concept change") for r in v.reasons)
    assert "likely concept change" in v.summary()
    assert "retrain_live_concept_change 1.0" in _exposition(registry_of(v))


@pytest.mark.parametrize("switched_on", [False, True])
def test_an_estimated_drop_asks_for_a_retrain_only_when_switched_on(
    params, model, adult_reference, adult_current, calibrator, switched_on
):
    p = _params(params, max_drift_share=0.99)
    estimated = p.monitor.estimated.model_copy(update={"retrain": switched_on})
    p = p.model_copy(update={"monitor": p.monitor.model_copy(update={"estimated": estimated})})
    logged = _logged(adult_current.iloc[6000:].sample(1000, random_state=5), model, p)
    v = assess_live(
        adult_reference, logged, logged.head(0), p, baseline=0.99, champion_version="1", at="t",
        calibrator=calibrator,
    )  # fmt: skip
    assert v.estimated_drop is not None and v.estimated_drop > p.monitor.estimated.max_drop
    assert v.retrain is switched_on
    said = [r for r in v.reasons if "below the evaluated 0.990" in r]
    assert said and ("reported only" in said[0]) is not switched_on


def test_without_a_calibrator_nothing_is_estimated(params, model, adult_reference, adult_current):
    p = _params(params)
    logged = _logged(adult_current.head(500), model, p)
    v = assess_live(adult_reference, logged, logged, p, baseline=0.9, champion_version="1", at="t")
    assert v.estimated is None and v.concept_change is None
    assert any("keeps no calibrator" in r for r in v.reasons)
