"""Stage `fairness`: group rates and gaps by hand, the size rules, parity with fairlearn, the
JSON round trip, and the stage's files and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fairlearn.metrics import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
)

from pipelines.config import FairnessConfig
from pipelines.stages.fairness import (
    MEASURES,
    FairnessError,
    FairnessResult,
    SmallGroup,
    assess_fairness,
    main,
)
from pipelines.stages.fairness.intervals import fairness_intervals

CFG10 = FairnessConfig(min_group_size=10, intersection=False)


def block(group: str, pos_hit: int, pos_miss: int, neg_hit: int, neg_miss: int) -> pd.DataFrame:
    """Rows of one group: actual positives predicted 1 / 0, actual negatives predicted 1 / 0."""
    y_true = [1] * (pos_hit + pos_miss) + [0] * (neg_hit + neg_miss)
    y_pred = [1] * pos_hit + [0] * pos_miss + [1] * neg_hit + [0] * neg_miss
    return pd.DataFrame({"y_true": y_true, "y_pred": y_pred, "g": group})


def assess(df: pd.DataFrame, cfg: FairnessConfig = CFG10, cols=("g",)) -> FairnessResult:
    return assess_fairness(df["y_true"], df["y_pred"], df[list(cols)], cfg)


HAND = pd.concat(
    [
        block("A", 8, 2, 2, 8),  # n 20, selection 10/20 = .5, TPR .8, FPR .2
        block("B", 5, 5, 1, 9),  # n 20, selection 6/20 = .3, TPR .5, FPR .1
        block("C", 3, 0, 2, 0),  # n 5: too small, and would dominate every gap
    ],
    ignore_index=True,
)


def test_hand_built_groups():
    a = assess(HAND).attribute("g")
    rates = {g.group: (g.n, g.positives, g.selection_rate, g.tpr, g.fpr) for g in a.groups}
    assert rates == {
        "A": (20, 10, 0.5, pytest.approx(0.8), pytest.approx(0.2)),
        "B": (20, 10, 0.3, pytest.approx(0.5), pytest.approx(0.1)),
    }
    assert a.demographic_parity_difference == pytest.approx(0.2)
    assert a.equalized_odds_difference == pytest.approx(0.3)  # TPR gap .3 > FPR gap .1
    assert a.disparate_impact_ratio == pytest.approx(0.6)


def test_small_groups_reported_and_not_judged():
    result = assess(HAND)
    a = result.attribute("g")
    assert a.too_small == (SmallGroup("C", 5),)
    assert "C" not in {g.group for g in a.groups}
    without_c = assess(HAND[HAND["g"] != "C"]).attribute("g")
    assert a.measures == without_c.measures
    assert any("'C' (n=5)" in note for note in result.notes)


def test_missing_values_form_their_own_group():
    df = pd.concat([HAND, block(None, 6, 4, 0, 10)], ignore_index=True)  # type: ignore[arg-type]
    df.loc[df.index[-3:], "g"] = np.nan  # None and NaN alike
    groups = {g.group: g for g in assess(df).attribute("g").groups}
    assert groups["missing"].n == 20 and groups["missing"].selection_rate == pytest.approx(0.3)


def test_tpr_needs_enough_positives_to_be_judged():
    # group B has 20 rows but only 3 actual positives: its TPR (0.0) is shown, not judged
    df = pd.concat([block("A", 8, 2, 2, 8), block("B", 0, 3, 1, 16)], ignore_index=True)
    result = assess(df)
    a = result.attribute("g")
    assert {g.group: g.tpr for g in a.groups} == {"A": 0.8, "B": 0.0}
    assert a.equalized_odds_difference == pytest.approx(0.2 - 1 / 17)  # the FPR gap only
    assert any("TPR not judged" in n and "'B' (3)" in n for n in result.notes)


def test_group_without_positives_has_undefined_tpr():
    df = pd.concat([block("A", 8, 2, 2, 8), block("B", 0, 0, 3, 17)], ignore_index=True)
    groups = {g.group: g for g in assess(df).attribute("g").groups}
    assert groups["B"].tpr is None and groups["B"].fpr == pytest.approx(0.15)


def test_fewer_than_two_judged_groups_gives_no_measure():
    result = assess(HAND[HAND["g"] != "B"])
    assert set(result.attribute("g").measures.values()) == {None}
    assert result.worst["demographic_parity_difference"].value is None
    assert any("fewer than two groups" in n for n in result.notes)


def test_intersection_and_worst():
    rng = np.random.default_rng(0)
    df = pd.concat([block("A", 8, 2, 2, 8), block("B", 5, 5, 1, 9)] * 2, ignore_index=True)
    df["h"] = rng.permutation(np.repeat(["u", "v"], len(df) // 2))
    cfg = FairnessConfig(min_group_size=5, intersection=True)
    result = assess(df, cfg, cols=("g", "h"))
    names = [a.attribute for a in result.attributes]
    assert names == ["g", "h", "g x h"]
    inter = result.attribute("g x h")
    assert inter.columns == ("g", "h") and inter.is_intersection
    assert {g.group for g in inter.groups} | {g.group for g in inter.too_small} == {
        "A x u",
        "A x v",
        "B x u",
        "B x v",
    }
    dpd = {a.attribute: a.demographic_parity_difference for a in result.attributes}
    assert result.worst["demographic_parity_difference"].value == max(dpd.values())
    singles = result.worst_of(intersection=False)["demographic_parity_difference"]
    assert singles.value == max(dpd["g"], dpd["h"]) and singles.attribute in ("g", "h")
    di = [a.disparate_impact_ratio for a in result.attributes]
    assert result.worst["disparate_impact_ratio"].value == min(di)  # a ratio: smaller is worse
    no_cross = assess(df, FairnessConfig(min_group_size=5, intersection=False), cols=("g", "h"))
    assert [a.attribute for a in no_cross.attributes] == ["g", "h"]


def test_parity_with_fairlearn():
    rng = np.random.default_rng(1)
    n = 6000
    g = rng.choice(["w", "x", "y", "z"], n, p=[0.5, 0.3, 0.197, 0.003]).astype(object)
    g[rng.random(n) < 0.05] = None
    y_true = (rng.random(n) < np.where(g == "x", 0.2, 0.35)).astype(int)
    y_pred = (rng.random(n) < np.where(y_true == 1, 0.7, 0.1) + np.where(g == "w", 0.1, 0)).astype(
        int
    )
    result = assess_fairness(y_true, y_pred, pd.DataFrame({"g": g}), FairnessConfig())
    a = result.attribute("g")
    assert [s.group for s in a.too_small] == ["z"]
    labels = np.where(pd.isna(g), "missing", g.astype(str))
    keep = labels != "z"
    kwargs = {"sensitive_features": labels[keep]}
    yt, yp = y_true[keep], y_pred[keep]
    assert a.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(yt, yp, **kwargs), abs=1e-12
    )
    assert a.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(yt, yp, **kwargs), abs=1e-12
    )
    assert a.disparate_impact_ratio == pytest.approx(
        demographic_parity_ratio(yt, yp, **kwargs), abs=1e-12
    )


def test_json_round_trip_and_flat_metrics():
    df = HAND.assign(h=np.tile(["u", "v"], len(HAND) // 2 + 1)[: len(HAND)])
    result = assess(df, FairnessConfig(min_group_size=10), cols=("g", "h"))
    back = FairnessResult.from_dict(json.loads(json.dumps(result.to_dict(), allow_nan=False)))
    assert back == result
    flat = result.flat_metrics()
    assert flat["g.demographic_parity_difference"] == pytest.approx(0.2)
    assert "worst.equalized_odds_difference" in flat
    assert all(isinstance(v, float) for v in flat.values())


def test_no_sensitive_attributes():
    result = assess_fairness([0, 1], [0, 1], pd.DataFrame(index=range(2)), FairnessConfig())
    assert result.attributes == () and result.worst["equalized_odds_difference"].value is None
    assert result.notes


@pytest.mark.parametrize(
    "y_true,y_pred,message",
    [
        ([0, 1, 1], [0, 1], "lengths differ"),
        ([0, 1, 2], [0, 1, 1], "y_true must hold only 0 and 1"),
        ([0, 1, 1], [0.2, 0.9, 0.4], "y_pred must hold only 0 and 1"),
    ],
)
def test_bad_input_is_refused(y_true, y_pred, message):
    with pytest.raises(FairnessError, match=message):
        assess_fairness(y_true, y_pred, pd.DataFrame({"g": ["a", "b", "a"]}), FairnessConfig())


# --------------------------------------------------------------------------- the stage edge
@pytest.fixture
def workspace(tmp_path) -> Path:
    """A params file for a non-Adult dataset and the predictions the evaluate stage would write."""
    raw = {
        "dataset": {
            "name": "synthetic",
            "reference": {"name": "reference.csv"},
            "current": {"name": "current.csv"},
            "columns": ["x", "grp", "region", "label"],
            "target": "label",
            "positive_label": "yes",
            "features": {"numeric": ["x"]},
            "sensitive": ["grp", "region"],
        },
        "validate": {"suite": "synthetic"},
        "mlflow": {"registered_model": "synthetic"},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    rng = np.random.default_rng(2)
    n = 2000
    y = rng.integers(0, 2, n)
    proba = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
    preds = pd.DataFrame(
        {
            "y_true": y,
            "proba": proba,
            "y_pred": (proba >= 0.5).astype(int),
            "grp": rng.choice(
                np.asarray(["a", "b", "tiny", None], dtype=object), n, p=[0.6, 0.38, 0.01, 0.01]
            ),
            "region": rng.choice(["north", "south"], n),
        }
    )
    path = tmp_path / "reports" / "evaluate" / "predictions.parquet"
    path.parent.mkdir(parents=True)
    preds.to_parquet(path)
    return tmp_path


def test_main_writes_its_files(workspace, capsys):
    assert main(["--params", str(workspace / "params.yaml")]) == 0
    out = workspace / "reports" / "fairness"
    result = FairnessResult.from_dict(json.loads((out / "fairness.json").read_text()))
    assert [a.attribute for a in result.attributes] == ["grp", "region", "grp x region"]
    assert {g.group for g in result.attribute("grp").too_small} == {"tiny", "missing"}
    assert json.loads((out / "metrics.json").read_text()) == {
        "dp_diff": result.worst["demographic_parity_difference"].value,
        "eo_diff": result.worst["equalized_odds_difference"].value,
    }
    assert (out / "plots" / "fairness.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "grp x region" in printed and "too small" in printed


def test_main_missing_predictions_exits_2(tmp_path, workspace, capsys):
    args = ["--params", str(workspace / "params.yaml"), "--predictions", str(tmp_path / "no.pq")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fairness: error:") and "not found" in err and "\n" not in err


def test_main_missing_sensitive_column_exits_2(tmp_path, workspace, capsys):
    preds = pd.read_parquet(workspace / "reports" / "evaluate" / "predictions.parquet")
    path = tmp_path / "preds.parquet"
    preds.drop(columns=["region"]).to_parquet(path)
    assert main(["--params", str(workspace / "params.yaml"), "--predictions", str(path)]) == 2
    assert "missing column(s) ['region']" in capsys.readouterr().err


# --------------------------------------------------------------------------- intervals
def small_groups_data() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Equalized odds 0.317 from 34 vs 50 actual negatives (FPR 12/34 vs 5/150 ... ), plus a
    group of 11 rows."""
    rows = []  # (group, y, pred)
    rows += [("a", 0, 1)] * 12 + [("a", 0, 0)] * 22 + [("a", 1, 1)] * 50 + [("a", 1, 0)] * 16
    rows += [("b", 0, 1)] * 1 + [("b", 0, 0)] * 49 + [("b", 1, 1)] * 55 + [("b", 1, 0)] * 15
    rows += [("c", 0, 0)] * 6 + [("c", 1, 1)] * 5
    g, y, pred = (np.array(c) for c in zip(*rows, strict=True))
    return y.astype(int), pred.astype(int), {"grp": g.astype(str)}


SIZES = {m: 30 for m in MEASURES}


def test_measures_have_intervals_and_small_groups_are_named():
    y, pred, labels = small_groups_data()
    res = fairness_intervals(y, pred, labels, SIZES, 400, 0.95, 0)
    eod = res.measures["grp"]["equalized_odds_difference"]
    assert eod.point == pytest.approx(12 / 34 - 1 / 50)
    assert eod.lower < 0.2 < eod.upper  # wide: 34 and 50 negatives say little
    assert any("'c' (11)" in note for note in res.not_judged)
    assert res.changes == {}


def test_paired_change_of_a_model_with_itself_is_zero_and_other_points_kept():
    y, pred, labels = small_groups_data()
    res = fairness_intervals(y, pred, labels, SIZES, 200, 0.95, 0, other_pred=pred)
    for m in MEASURES:
        change = res.changes["grp"][m]
        assert (change.point, change.lower, change.upper) == (0.0, 0.0, 0.0)
        assert res.other["grp"][m] == pytest.approx(res.measures["grp"][m].point)


def test_copies_do_not_narrow_a_fairness_interval():
    y, pred, labels = small_groups_data()
    once = fairness_intervals(y, pred, labels, SIZES, 400, 0.95, 0)
    k = 5
    copied = {"grp": np.repeat(labels["grp"], k)}
    ids = np.repeat(np.arange(len(y)), k)
    naive = fairness_intervals(np.repeat(y, k), np.repeat(pred, k), copied, SIZES, 400, 0.95, 0)
    as_once = fairness_intervals(
        np.repeat(y, k), np.repeat(pred, k), copied, SIZES, 400, 0.95, 0, rows=ids
    )

    def width(r):
        i = r.measures["grp"]["equalized_odds_difference"]
        return i.upper - i.lower

    assert width(naive) < 0.6 * width(once)
    assert width(as_once) == pytest.approx(width(once), rel=0.3)


def test_no_rows_is_an_empty_result_not_an_error():
    res = assess_fairness([], [], pd.DataFrame({"g": []}), FairnessConfig())
    assert res.n == 0 and res.attributes == () and "no rows to assess" in res.notes


def test_linearised_fairness_intervals_agree_with_the_bootstrap():
    rng = np.random.default_rng(11)
    n = 20_000
    g = rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1])
    y = (rng.random(n) < 0.3).astype(int)
    lift = np.select([g == "a", g == "b"], [0.1, 0.0], -0.05)
    pred = (rng.random(n) < 0.25 + 0.4 * y + lift).astype(int)
    other = (rng.random(n) < 0.25 + 0.4 * y).astype(int)
    args = (y, pred, {"g": g}, SIZES, 400, 0.95, 0)
    boot = fairness_intervals(*args, other_pred=other)
    lin = fairness_intervals(*args, other_pred=other, linear_above_rows=2)
    # a gap is a max minus a min (equalized odds: of two gaps), so its bootstrap is skewed;
    # the linearised interval is symmetric around the point: widths agree to a third
    for m in MEASURES:
        b, li = boot.measures["g"][m], lin.measures["g"][m]
        assert li.point == b.point
        assert li.upper - li.lower == pytest.approx(b.upper - b.lower, rel=0.33), m
        cb, cl = boot.changes["g"][m], lin.changes["g"][m]
        assert cl.upper - cl.lower == pytest.approx(cb.upper - cb.lower, rel=0.33), m
