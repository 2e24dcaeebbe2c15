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
